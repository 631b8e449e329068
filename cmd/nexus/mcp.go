package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/client"
)

func mcpCommand() *cobra.Command {
	command := &cobra.Command{Use: "mcp", Short: "Your hosted MCP servers (Studio)"}
	servers := &cobra.Command{Use: "servers", Short: "List, create, restart and remove MCP servers"}
	servers.AddCommand(mcpServersListCommand(), mcpServersCreateCommand(), mcpServersRestartCommand(), mcpServersDeleteCommand())
	command.AddCommand(mcpPluginsCommand(), servers, mcpLogsCommand(), mcpTokenCommand())
	return command
}

func mcpPluginsCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "plugins",
		Short: "List the server plugins that the operator installed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			plugins, err := s.client.MCPPlugins(commandContext(cmd))
			if err != nil {
				return err
			}
			return s.print(plugins, func(w io.Writer) error {
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(table, "NAME\tVERSION\tAVAILABLE\tDESCRIPTION")
				for _, p := range plugins {
					available := "yes"
					if !p.Available {
						available = "no"
						if p.UnavailableReason != nil {
							available = "no: " + *p.UnavailableReason
						}
					}
					fmt.Fprintf(table, "%s\t%s\t%s\t%s\n", p.Name, p.Version, available, p.Description)
				}
				return table.Flush()
			})
		},
	})
}

func mcpServersListCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "list",
		Short: "List your MCP servers with their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			servers, err := s.client.MCPServers(commandContext(cmd))
			if err != nil {
				return err
			}
			return s.print(servers, func(w io.Writer) error {
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(table, "ID\tNAME\tPLUGIN\tSTATE\tRESTARTS\tENDPOINT")
				for _, server := range servers {
					fmt.Fprintf(table, "%s\t%s\t%s\t%s\t%d\t%s\n", server.ID, server.Name, server.Plugin, server.State, server.Restarts, server.Endpoint)
				}
				return table.Flush()
			})
		},
	})
}

func mcpServersCreateCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "create --plugin PLUGIN --name NAME [--config JSON] [--secret NAME=VALUE]...",
		Short: "Provision an MCP server of a catalog plugin",
		Long: `Provision an MCP server of a plugin from "nexus mcp plugins". --config is a JSON object that the
plugin's config schema accepts. Each --secret is passed to the plugin's process in its
environment; the server stores secrets sealed and never shows them again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			create := client.MCPServerCreate{}
			create.Plugin, _ = cmd.Flags().GetString("plugin")
			create.Name, _ = cmd.Flags().GetString("name")
			if raw, _ := cmd.Flags().GetString("config"); raw != "" {
				if err := json.Unmarshal([]byte(raw), &create.Config); err != nil || create.Config == nil {
					return fmt.Errorf("invalid --config %q: want a JSON object", raw)
				}
			}
			secrets, _ := cmd.Flags().GetStringArray("secret")
			for i, secret := range secrets {
				name, value, ok := strings.Cut(secret, "=")
				if !ok || name == "" {
					// The value is not shown, because it may be the secret.
					return fmt.Errorf("invalid --secret number %d: want NAME=VALUE", i+1)
				}
				if create.Secrets == nil {
					create.Secrets = map[string]string{}
				}
				create.Secrets[name] = value
			}

			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			server, err := s.client.CreateMCPServer(commandContext(cmd), create)
			if err != nil {
				return err
			}
			return s.print(server, func(w io.Writer) error { return printMCPServer(w, s, server) })
		},
	}
	command.Flags().String("plugin", "", "the plugin's name in the catalog")
	command.Flags().String("name", "", "a name for the server, unique among yours")
	command.Flags().String("config", "", "the server's config as a JSON object")
	command.Flags().StringArray("secret", nil, "a secret as NAME=VALUE; repeat for more")
	_ = command.MarkFlagRequired("plugin")
	_ = command.MarkFlagRequired("name")
	return userFlags(command)
}

func printMCPServer(w io.Writer, s *session, server client.MCPServer) error {
	table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(table, "id\t%s\n", server.ID)
	fmt.Fprintf(table, "name\t%s\n", server.Name)
	fmt.Fprintf(table, "plugin\t%s\n", server.Plugin)
	fmt.Fprintf(table, "state\t%s\n", server.State)
	if server.LastError != nil {
		fmt.Fprintf(table, "last error\t%s\n", *server.LastError)
	}
	fmt.Fprintf(table, "endpoint\t%s\n", s.client.MCPEndpointURL(server.ID))
	return table.Flush()
}

func mcpServersRestartCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "restart ID",
		Short: "Restart an MCP server and clear its crash history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			server, err := s.client.RestartMCPServer(commandContext(cmd), args[0])
			if err != nil {
				return err
			}
			return s.print(server, func(w io.Writer) error { return printMCPServer(w, s, server) })
		},
	})
}

func mcpServersDeleteCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "delete ID",
		Short: "Stop and remove an MCP server with its tokens",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			if err := s.client.DeleteMCPServer(commandContext(cmd), args[0]); err != nil {
				return err
			}
			return s.print(map[string]any{"id": args[0], "deleted": true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Deleted MCP server %s.\n", args[0])
				return err
			})
		},
	})
}

func mcpLogsCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "logs ID",
		Short: "Show the tail of an MCP server's stderr and its supervisor's records",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			tail, _ := cmd.Flags().GetInt("tail")
			logs, err := s.client.MCPServerLogs(commandContext(cmd), args[0], tail)
			if err != nil {
				return err
			}
			return s.print(logs, func(w io.Writer) error {
				if logs.Dropped > 0 {
					fmt.Fprintf(w, "(%d older lines are no longer kept)\n", logs.Dropped)
				}
				for _, line := range logs.Lines {
					fmt.Fprintf(w, "%s %-10s %s\n", line.Time.Local().Format(time.RFC3339), line.Source, line.Line)
				}
				return nil
			})
		},
	}
	command.Flags().Int("tail", 200, "the number of newest lines, 1 to 100000")
	return userFlags(command)
}

func mcpTokenCommand() *cobra.Command {
	tokens := &cobra.Command{Use: "tokens", Short: "Tokens for a server's MCP endpoint"}
	create := &cobra.Command{
		Use:   "create ID",
		Short: "Create a token that opens only this server's MCP endpoint; it is shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			name, _ := cmd.Flags().GetString("name")
			token, err := s.client.CreateMCPToken(commandContext(cmd), args[0], name)
			if err != nil {
				return err
			}
			return s.print(token, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s\nendpoint: %s\n", token.Token, s.client.MCPEndpointURL(args[0]))
				return err
			})
		},
	}
	create.Flags().String("name", "", "a label for the token")
	tokens.AddCommand(userFlags(create))
	return tokens
}
