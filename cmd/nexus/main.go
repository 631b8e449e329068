// Command nexus is the Nexus Suite API server, its operator tools and its
// command-line client. `nexus serve` runs the server, `nexus migrate`
// manages the schema, `nexus keys` the signing keys and `nexus config
// check` validates a config. `nexus login` signs in to a server with the
// device flow, and the user commands (whoami, entitlements, trial, billing
// checkout, sync push and pull, skills, mcp, ...) call its API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "nexus:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "nexus",
		Short:         "The Nexus Suite API server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("config", "c", "", "config file to layer over the embedded defaults (YAML)")
	root.AddCommand(serveCommand(), configCommand(), migrateCommand(), keysCommand(), adminCommand(), billingCommand())
	root.AddCommand(loginCommand(), logoutCommand(), whoamiCommand(), userEntitlementsCommand(), trialCommand())
	root.AddCommand(syncCommand(), skillsCommand(), mcpCommand())
	return root
}
