package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexus-suite/nexus/client/syncfolder"
)

// passphraseEnv names the environment variable that contains the sync
// passphrase for scripts. Without it, the commands prompt on a terminal.
const passphraseEnv = "NEXUS_SYNC_PASSPHRASE"

func syncCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "sync",
		Short: "Sync a folder with client-side encryption (Pro and Studio)",
		Long: `Push and pull a local folder through the Sync API. Files are encrypted on this machine with
XChaCha20-Poly1305 under a key that only your passphrase opens: the server stores a random key
wrapped with a key derived from the passphrase by argon2id, and sees neither file names nor
contents. Use the same passphrase on every device ($` + passphraseEnv + ` or a prompt).

Each folder keeps its sync state in ` + syncfolder.StateFile + `. A file changed on both sides is a
conflict: it is reported with its path and left alone until you choose a side with --force.`,
	}
	command.AddCommand(syncTransferCommand("push", "Encrypt and upload the folder's new, changed and deleted files",
		"With --force, your files overwrite the server's newer versions."))
	command.AddCommand(syncTransferCommand("pull", "Download and decrypt the changes made on other devices",
		"With --force, the server's version replaces every file that conflicts with a local change, and every item is read again."))
	return command
}

func syncTransferCommand(direction, short, forceHelp string) *cobra.Command {
	command := &cobra.Command{
		Use:   direction + " DIR",
		Short: short,
		Long:  short + ". " + forceHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			opts := syncfolder.Options{Dir: args[0], Server: s.stored.Server, Passphrase: passphraseSource(cmd)}
			opts.Collection, _ = cmd.Flags().GetString("collection")
			opts.KeyID, _ = cmd.Flags().GetString("key")
			opts.Force, _ = cmd.Flags().GetBool("force")
			if bar := newProgress(cmd); bar != nil {
				opts.Progress = bar
			}

			transfer := syncfolder.Push
			if direction == "pull" {
				transfer = syncfolder.Pull
			}
			result, err := transfer(commandContext(cmd), s.client, opts)
			if err != nil {
				return err
			}
			if err := s.print(result, func(w io.Writer) error { return printSyncResult(w, direction, result) }); err != nil {
				return err
			}
			if n := len(result.Conflicts); n > 0 {
				return fmt.Errorf("%s left as they are; see the list above", count(n, "conflicting file", "conflicting files"))
			}
			return nil
		},
	}
	command.Flags().String("collection", syncfolder.DefaultCollection, "the sync collection that holds the folder")
	command.Flags().String("key", syncfolder.DefaultKeyID, "the id of the key envelope on the server")
	command.Flags().Bool("force", false, "settle conflicts in favour of this side, as the command's help says")
	return userFlags(command)
}

func printSyncResult(w io.Writer, direction string, result syncfolder.Result) error {
	verb := map[string]string{"push": "pushed", "pull": "pulled"}[direction]
	for _, name := range result.Written {
		fmt.Fprintf(w, "%s %s\n", verb, name)
	}
	for _, name := range result.Deleted {
		fmt.Fprintf(w, "deleted %s\n", name)
	}
	for _, skipped := range result.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", skipped.Path, skipped.Reason)
	}
	for _, c := range result.Conflicts {
		fmt.Fprintf(w, "conflict %s (yours is based on version %d, the server has %d): %s\n", c.Path, c.BaseVersion, c.ServerVersion, c.Reason)
	}
	_, err := fmt.Fprintf(w, "%s %s (%s), deleted %d, %d unchanged, %s\n",
		verb, count(len(result.Written), "file", "files"), formatBytes(result.Bytes), len(result.Deleted),
		result.Unchanged, count(len(result.Conflicts), "conflict", "conflicts"))
	return err
}

// count writes n with the singular or plural noun.
func count(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return fmt.Sprintf("%d %s", n, plural)
}

// passphraseSource returns the passphrase from the environment, or prompts
// for it on the terminal: twice when it creates the key, so a typo does
// not lock the data away.
func passphraseSource(cmd *cobra.Command) func(create bool) (string, error) {
	return func(create bool) (string, error) {
		if value := os.Getenv(passphraseEnv); value != "" {
			return value, nil
		}
		stdin := int(os.Stdin.Fd())
		if !term.IsTerminal(stdin) {
			return "", fmt.Errorf("no sync passphrase: set %s or run the command in a terminal", passphraseEnv)
		}
		prompt := "Sync passphrase: "
		if create {
			prompt = "New sync passphrase (used on every device; it cannot be recovered): "
		}
		first, err := readPassphrase(cmd, stdin, prompt)
		if err != nil || !create {
			return first, err
		}
		second, err := readPassphrase(cmd, stdin, "Repeat the passphrase: ")
		if err != nil {
			return "", err
		}
		if first != second {
			return "", errors.New("the passphrases differ; nothing was stored")
		}
		return first, nil
	}
}

func readPassphrase(cmd *cobra.Command, fd int, prompt string) (string, error) {
	fmt.Fprint(cmd.ErrOrStderr(), prompt)
	value, err := term.ReadPassword(fd)
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read the passphrase: %w", err)
	}
	passphrase := strings.TrimRight(string(value), "\r\n")
	if passphrase == "" {
		return "", errors.New("the passphrase is empty")
	}
	return passphrase, nil
}
