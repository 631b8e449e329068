// Command nexus is the Nexus Suite API server and its operator tools:
// `nexus serve` runs the server, `nexus migrate` manages the schema,
// `nexus keys` the signing keys and `nexus config check` validates a config.
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
	return root
}
