package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/runtime/keyring"
	"github.com/nexus-suite/nexus/storage"
)

func configCommand() *cobra.Command {
	config := &cobra.Command{Use: "config", Short: "Work with config files"}
	config.AddCommand(&cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a config file without starting the server",
		Long: `Validate FILE layered over the embedded defaults and the NEXUS_*
environment variables, the way serve would load it; without FILE, check the
defaults and the environment alone. Every problem is printed with its key;
the exit status is 1 when there is any.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, name := "", "embedded defaults and environment"
			if len(args) == 1 {
				path, name = args[0], args[0]
			}
			cfg, err := configs.Load(path, os.Environ())
			if err != nil {
				return err
			}
			if err := app.CheckModules(cfg); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", name)
			return nil
		},
	})
	return config
}

func migrateCommand() *cobra.Command {
	migrate := &cobra.Command{Use: "migrate", Short: "Apply or list database migrations"}
	migrate.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
				if err := storage.Migrate(ctx, db, app.MigrationSets()...); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
				return nil
			})
		},
	})
	migrate.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List every migration and whether it is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
				states, err := storage.MigrationStatus(ctx, db, app.MigrationSets()...)
				if err != nil {
					return err
				}
				table := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(table, "SET\tVERSION\tFILE\tAPPLIED")
				for _, state := range states {
					applied := "pending"
					if state.Applied {
						applied = state.AppliedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(table, "%s\t%d\t%s\t%s\n", state.Set, state.Version, state.Source, applied)
				}
				return table.Flush()
			})
		},
	})
	return migrate
}

func keysCommand() *cobra.Command {
	keys := &cobra.Command{Use: "keys", Short: "Manage the token signing keys"}
	keys.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Add a signing key that signs after tokens.key_lead_time",
		Long: `Add a new RSA-2048 signing key. It is in the JWKS at once and signs
tokens from tokens.key_lead_time on, so that clients and other nodes fetch
it before they see a token it signed; with no key signing now, it signs at
once. The previous key signs until then, and stays in the JWKS for
tokens.access_ttl plus tokens.leeway after it stops signing, so tokens it
signed keep verifying until they expire. Running servers read the keys
again every minute and switch to the new key at its activation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
				masterKey, err := keyring.LoadMasterKey(cfg.Security, cfg.DataDir)
				if err != nil {
					return err
				}
				ring := keyring.New(db, masterKey, clock.System{}, newLogger(cfg.Log, os.Stderr, isTerminal(os.Stderr)))
				if err := ring.Ensure(ctx); err != nil {
					return err
				}
				kid, err := ring.Rotate(ctx, cfg.Tokens.KeyLeadTime, cfg.Tokens.AccessTTL+cfg.Tokens.Leeway)
				if err != nil {
					return err
				}

				activatesAt, ok := ring.ActivatesAt(kid)
				if !ok {
					return fmt.Errorf("rotate signing key: new key %s is not loaded", kid)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s signs from %s\n",
					kid, activatesAt.UTC().Format(time.RFC3339))
				return nil
			})
		},
	})
	return keys
}

// withDatabase opens the configured database for a one-off command.
func withDatabase(cmd *cobra.Command, run func(ctx context.Context, db *storage.DB) error) error {
	cfg, _, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Minute)
	defer cancel()

	db, err := storage.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()

	// Like serve, a command brings the schema up to date first, so it never
	// meets a database that lacks a module's tables.
	if cfg.Database.MigrateOnStart && cmd.Parent() != nil && cmd.Parent().Name() != "migrate" {
		if err := storage.Migrate(ctx, db, app.MigrationSets()...); err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
	}
	return run(ctx, db)
}
