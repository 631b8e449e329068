package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/modules/billing"
	"github.com/nexus-suite/nexus/modules/entitlements"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// billingCommand groups the operator actions of the billing module.
func billingCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "billing",
		Short: "Stripe billing: checkout for users, reconcile for operators",
	}
	command.AddCommand(checkoutCommand())
	command.AddCommand(&cobra.Command{
		Use:   "reconcile",
		Short: "Read every subscription from Stripe again and correct the stored ones that drifted",
		Long: `Read every subscription that the database names from Stripe, with modules.billing.api_url and
secret_key, and correct the stored state that differs, logging each correction. With redis.url
set, running servers that share that Redis apply each correction at once; without it, their
actors use it once they resolve their entitlements again (after actors.user_idle_timeout without
a request, or at the user's next change).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			logger := newLogger(cfg.Log, os.Stderr, isTerminal(os.Stderr))
			return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
				notifier, closeNotifier, err := userNotifier(cmd, ctx)
				if err != nil {
					return err
				}
				defer closeNotifier()
				recorder := entitlements.NewRecorder(db, clock.System{}, logger, notifier)
				result, err := billing.Reconcile(ctx, cfg, db, recorder, clock.System{}, logger)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "checked %d, corrected %d, failed %d\n",
					result.Checked, result.Corrected, result.Failed)
				if err == nil && result.Failed > 0 {
					err = fmt.Errorf("reconcile: %d subscriptions failed; see the log", result.Failed)
				}
				return err
			})
		},
	})
	return command
}
