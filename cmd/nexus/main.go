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

// Groups of the root command's help.
const (
	groupServer = "server"
	groupClient = "client"
)

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "nexus",
		Short:         "The Nexus Suite API server, its operator tools and its command-line client",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringP("config", "c", "", "config file of the server and operator commands, layered over the embedded defaults (YAML)")
	root.AddGroup(
		&cobra.Group{ID: groupServer, Title: "Server and operator commands (on the server's config and database):"},
		&cobra.Group{ID: groupClient, Title: "Client commands (over the API, after nexus login):"},
	)
	for _, command := range []*cobra.Command{serveCommand(), configCommand(), migrateCommand(), keysCommand(), adminCommand()} {
		command.GroupID = groupServer
		root.AddCommand(command)
	}
	for _, command := range []*cobra.Command{
		loginCommand(), logoutCommand(), whoamiCommand(), userEntitlementsCommand(), trialCommand(),
		billingCommand(), syncCommand(), skillsCommand(), mcpCommand(),
	} {
		command.GroupID = groupClient
		root.AddCommand(command)
	}
	return root
}
