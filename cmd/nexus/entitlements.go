package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/modules/entitlements"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
)

// cliActor is the history actor of changes made with the nexus command.
const cliActor = "cli"

// entitlementsCommand groups the operator actions on entitlement overrides.
// They work on the database directly.
func entitlementsCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "entitlements",
		Short: "Show and override the entitlements of an account",
		Long: `Show and override the entitlements of an account, working on the database directly.
With redis.url set, running servers that share that Redis apply a change at once. Without it,
a user's live actor keeps its cached entitlements until it passivates
(actors.user_idle_timeout without a request); a running server still ends an override at its
expiry on time.`,
	}

	command.AddCommand(&cobra.Command{
		Use:   "show EMAIL",
		Short: "Show an account's entitlements, active override and history as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withEntitlements(cmd, args[0], func(ctx context.Context, a *entitlements.Admin, userID string) error {
				view, err := a.Show(ctx, userID)
				if err != nil {
					return err
				}
				encoder := json.NewEncoder(cmd.OutOrStdout())
				encoder.SetIndent("", "  ")
				return encoder.Encode(view)
			})
		},
	})

	override := &cobra.Command{
		Use:   "override EMAIL --reason TEXT [--tier T] [--features a,b] [--for 24h]",
		Short: "Set an account's override: a tier, extra features or both",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			input, err := overrideFlags(cmd)
			if err != nil {
				return err
			}
			return withEntitlements(cmd, args[0], func(ctx context.Context, a *entitlements.Admin, userID string) error {
				if err := a.SetOverride(ctx, userID, cliActor, input); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) override set\n", args[0], userID)
				return nil
			})
		},
	}
	override.Flags().String("tier", "", "catalog tier id that replaces the account's tier, such as studio")
	override.Flags().StringSlice("features", nil, "features granted on top of the tier, comma-separated, such as sync,skills_hub")
	override.Flags().Duration("for", 0, "how long the override lasts, such as 24h; 0 lasts until cleared")
	override.Flags().String("reason", "", "why the override is set, kept in the history (required)")
	command.AddCommand(override)

	clear := &cobra.Command{
		Use:   "clear EMAIL --reason TEXT",
		Short: "Clear an account's active override",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reason, err := cmd.Flags().GetString("reason")
			if err != nil {
				return err
			}
			return withEntitlements(cmd, args[0], func(ctx context.Context, a *entitlements.Admin, userID string) error {
				if err := a.ClearOverride(ctx, userID, cliActor, reason); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) override cleared\n", args[0], userID)
				return nil
			})
		},
	}
	clear.Flags().String("reason", "", "why the override is cleared, kept in the history (required)")
	command.AddCommand(clear)
	return command
}

// overrideFlags reads the override command's flags into an input.
func overrideFlags(cmd *cobra.Command) (entitlements.OverrideInput, error) {
	var input entitlements.OverrideInput
	var err error
	flags := cmd.Flags()
	if input.Tier, err = flags.GetString("tier"); err != nil {
		return input, err
	}
	if input.Features, err = flags.GetStringSlice("features"); err != nil {
		return input, err
	}
	if input.Reason, err = flags.GetString("reason"); err != nil {
		return input, err
	}
	duration, err := flags.GetDuration("for")
	if err != nil {
		return input, err
	}
	if duration < 0 {
		return input, errors.New("--for must not be negative")
	}
	if duration > 0 {
		expires := time.Now().Add(duration)
		input.ExpiresAt = &expires
	}
	for i, feature := range input.Features {
		input.Features[i] = strings.TrimSpace(feature)
	}
	return input, nil
}

// withEntitlements finds the account of email and runs an action on its id.
func withEntitlements(cmd *cobra.Command, email string, run func(ctx context.Context, a *entitlements.Admin, userID string) error) error {
	cfg, _, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
		info, err := auth.NewAdmin(db, clock.System{}, nil).FindByEmail(ctx, email)
		if err != nil {
			return err
		}
		notifier, closeNotifier, err := userNotifier(cmd, ctx)
		if err != nil {
			return err
		}
		defer closeNotifier()
		return run(ctx, entitlements.NewAdmin(db, cfg.Tiers, clock.System{}, notifier), info.ID)
	})
}
