package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/client"
)

// The user-side commands talk to a server over the API with the stored
// credentials, in the manner of `vault login`. Each takes --server and
// --json.

// userFlags adds the flags every user command shares.
func userFlags(command *cobra.Command) *cobra.Command {
	command.Flags().String("server", "", "server address, such as "+defaultServer+" (default: the server of the last login, else $NEXUS_SERVER, else "+defaultServer+")")
	command.Flags().Bool("json", false, "print the API's data as JSON")
	return command
}

// session is a client for one command, with the stored credentials.
type session struct {
	client *client.Client
	stored credentials
	json   bool
	out    io.Writer
}

// openSession builds a client for the command. With signedIn, it fails
// when no credentials are stored.
func openSession(cmd *cobra.Command, signedIn bool) (*session, error) {
	stored, found, err := loadCredentials()
	if err != nil {
		return nil, err
	}
	if signedIn && !found {
		return nil, errors.New("not signed in; run nexus login first")
	}
	server, _ := cmd.Flags().GetString("server")
	switch {
	case server != "":
	case stored.Server != "":
		server = stored.Server
	case os.Getenv("NEXUS_SERVER") != "":
		server = os.Getenv("NEXUS_SERVER")
	default:
		server = defaultServer
	}
	if found && stored.Server != "" && stored.Server != server {
		// Tokens of one server mean nothing to another.
		if signedIn {
			return nil, fmt.Errorf("signed in to %s, not %s; run nexus login --server %s", stored.Server, server, server)
		}
		stored = credentials{}
	}

	asJSON, _ := cmd.Flags().GetBool("json")
	s := &session{stored: stored, json: asJSON, out: cmd.OutOrStdout()}
	s.stored.Server = server
	s.client, err = client.New(client.Options{
		BaseURL: server, Tokens: stored.tokens(), UserAgent: "nexus-cli",
		OnRefresh: func(tokens client.Tokens) error {
			s.stored.AccessToken, s.stored.RefreshToken, s.stored.ExpiresAt = tokens.AccessToken, tokens.RefreshToken, tokens.ExpiresAt
			return saveCredentials(s.stored)
		},
	})
	return s, err
}

// print writes value as indented JSON with --json, or calls human.
func (s *session) print(value any, human func(w io.Writer) error) error {
	if s.json {
		encoder := json.NewEncoder(s.out)
		encoder.SetIndent("", "  ")
		return encoder.Encode(value)
	}
	return human(s.out)
}

func commandContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func loginCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "login",
		Short: "Sign in with the device flow and store the tokens",
		Long: `Start a device sign-in (RFC 8628) with the public client nexus-cli, print the verification URL
and code, open a browser when one is available, and wait while you approve in the browser. The
tokens go to credentials.json in your config directory (mode 0600; NEXUS_CREDENTIALS names
another file), and later commands use and refresh them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, false)
			if err != nil {
				return err
			}
			ctx := commandContext(cmd)
			login, err := s.client.StartDeviceLogin(ctx, client.DeviceClientID)
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			fmt.Fprintf(errOut, "Open %s and enter the code %s\n", login.VerificationURI, login.UserCode)
			fmt.Fprintf(errOut, "(or open %s)\n", login.VerificationURIComplete)
			if noBrowser, _ := cmd.Flags().GetBool("no-browser"); !noBrowser {
				openBrowser(login.VerificationURIComplete)
			}
			fmt.Fprintf(errOut, "Waiting for approval; the code expires in %s, at %s.\n",
				time.Until(login.ExpiresAt).Round(time.Minute), login.ExpiresAt.Local().Format("15:04 MST"))

			tokens, err := login.Wait(ctx)
			if err != nil {
				return err
			}
			s.stored.AccessToken, s.stored.RefreshToken, s.stored.ExpiresAt = tokens.AccessToken, tokens.RefreshToken, tokens.ExpiresAt
			if err := saveCredentials(s.stored); err != nil {
				return err
			}
			user, err := s.client.Me(ctx)
			if err != nil {
				return err
			}
			return s.print(user, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Signed in to %s as %s.\n", s.stored.Server, user.Email)
				return err
			})
		},
	}
	command.Flags().Bool("no-browser", false, "only print the URL; do not open a browser")
	return userFlags(command)
}

// openBrowser opens url in the desktop's browser when there is a desktop.
// Failures are ignored, because the URL is printed too.
func openBrowser(url string) {
	var command *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		command = exec.Command("open", url)
	case "windows":
		command = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		command = exec.Command("xdg-open", url)
	}
	if err := command.Start(); err == nil {
		go func() { _ = command.Wait() }()
	}
}

func logoutCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "logout",
		Short: "End the session on the server and remove the stored tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			logoutErr := s.client.Logout(commandContext(cmd))
			if err := removeCredentials(); err != nil {
				return err
			}
			if logoutErr != nil && !errors.Is(logoutErr, client.ErrSignInRequired) {
				return fmt.Errorf("the stored tokens are removed, but the server did not end the session: %w", logoutErr)
			}
			return s.print(map[string]bool{"signed_out": true}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "Signed out.")
				return err
			})
		},
	})
}

func whoamiCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "whoami",
		Short: "Show the signed-in account",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			user, err := s.client.Me(commandContext(cmd))
			if err != nil {
				return err
			}
			return s.print(user, func(w io.Writer) error {
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(table, "email\t%s\n", user.Email)
				fmt.Fprintf(table, "id\t%s\n", user.ID)
				fmt.Fprintf(table, "role\t%s\n", user.Role)
				fmt.Fprintf(table, "server\t%s\n", s.stored.Server)
				return table.Flush()
			})
		},
	})
}

func userEntitlementsCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "entitlements",
		Short: "Show your tier, features, limits and trial",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			result, err := s.client.Entitlements(commandContext(cmd))
			if err != nil {
				return err
			}
			return s.print(result, func(w io.Writer) error { return printEntitlements(w, result) })
		},
	})
}

func printEntitlements(w io.Writer, e client.Entitlements) error {
	table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(table, "tier\t%s (%s)\n", e.TierName, e.Source)
	fmt.Fprintf(table, "features\t%s\n", strings.Join(e.Features, ", "))
	for _, name := range []string{"requests_per_minute", "sync_bytes", "skill_publishes_per_month", "mcp_servers"} {
		fmt.Fprintf(table, "%s\t%d\n", strings.ReplaceAll(name, "_", " "), e.Limits[name])
	}
	if e.Trial != nil {
		state := "ended"
		if e.Trial.Active {
			state = "active"
		}
		fmt.Fprintf(table, "trial\t%s, %s until %s\n", e.Trial.Tier, state, e.Trial.EndsAt.Local().Format(time.RFC1123))
	}
	return table.Flush()
}

func trialCommand() *cobra.Command {
	trial := &cobra.Command{Use: "trial", Short: "Your account's one trial"}
	trial.AddCommand(userFlags(&cobra.Command{
		Use:   "start",
		Short: "Start the trial (no card needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			trial, err := s.client.StartTrial(commandContext(cmd))
			if err != nil {
				return err
			}
			return s.print(trial, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Your trial of the %s tier runs until %s.\n", trial.Tier, trial.EndsAt.Local().Format(time.RFC1123))
				return err
			})
		},
	}))
	return trial
}

func checkoutCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "checkout --tier TIER [--interval month|year]",
		Short: "Create a Stripe Checkout session and print its URL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			tier, _ := cmd.Flags().GetString("tier")
			interval, _ := cmd.Flags().GetString("interval")
			result, err := s.client.Checkout(commandContext(cmd), tier, interval)
			if err != nil {
				return err
			}
			return s.print(result, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, result.URL)
				return err
			})
		},
	}
	command.Flags().String("tier", "", "the tier to buy, such as pro or studio")
	command.Flags().String("interval", "month", "the billing interval: month or year")
	_ = command.MarkFlagRequired("tier")
	return userFlags(command)
}
