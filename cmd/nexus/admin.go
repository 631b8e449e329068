package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/modules/auth"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/clock"
	"github.com/nexus-suite/nexus/storage"
	"github.com/nexus-suite/nexus/storage/kv"
)

// adminCommand groups the operator actions on accounts. They work on the
// database directly; a running server notices ended sessions at its next
// session recheck (actors.session_recheck_interval).
func adminCommand() *cobra.Command {
	admin := &cobra.Command{Use: "admin", Short: "Operator actions on accounts"}

	admin.AddCommand(&cobra.Command{
		Use:   "grant EMAIL ROLE",
		Short: "Give an account a role: admin or user",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, func(ctx context.Context, a *auth.Admin) error {
				if err := a.Grant(ctx, args[0], args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s now has the role %s\n", args[0], args[1])
				return nil
			})
		},
	})

	admin.AddCommand(&cobra.Command{
		Use:   "find EMAIL",
		Short: "Show the account of an email address as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAdmin(cmd, func(ctx context.Context, a *auth.Admin) error {
				info, err := a.FindByEmail(ctx, args[0])
				if err != nil {
					return err
				}
				encoder := json.NewEncoder(cmd.OutOrStdout())
				encoder.SetIndent("", "  ")
				return encoder.Encode(info)
			})
		},
	})

	lock := &cobra.Command{
		Use:   "lock EMAIL",
		Short: "Lock an account and end its sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			duration, err := cmd.Flags().GetDuration("for")
			if err != nil {
				return err
			}
			return onAccount(cmd, args[0], "locked", func(ctx context.Context, a *auth.Admin, id string) error {
				var until time.Time
				if duration > 0 {
					until = time.Now().Add(duration)
				}
				return a.Lock(ctx, id, until)
			})
		},
	}
	lock.Flags().Duration("for", 0, "how long the lock lasts, such as 24h; 0 locks until unlocked")
	admin.AddCommand(lock)

	for _, action := range []struct {
		use, short, done string
		run              func(ctx context.Context, a *auth.Admin, id string) error
	}{
		{"unlock EMAIL", "Lift an operator's lock", "unlocked", func(ctx context.Context, a *auth.Admin, id string) error { return a.Unlock(ctx, id) }},
		{"verify EMAIL", "Mark an account's email verified", "verified", func(ctx context.Context, a *auth.Admin, id string) error { return a.MarkVerified(ctx, id) }},
		{"delete EMAIL", "Delete an account and every module's data of it", "deleted", func(ctx context.Context, a *auth.Admin, id string) error { return a.Delete(ctx, id) }},
	} {
		action := action
		admin.AddCommand(&cobra.Command{
			Use:   action.use,
			Short: action.short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return onAccount(cmd, args[0], action.done, action.run)
			},
		})
	}
	admin.AddCommand(entitlementsCommand())
	return admin
}

// onAccount runs an action on the account of email and prints the outcome.
func onAccount(cmd *cobra.Command, email, done string, run func(ctx context.Context, a *auth.Admin, id string) error) error {
	return withAdmin(cmd, func(ctx context.Context, a *auth.Admin) error {
		info, err := a.FindByEmail(ctx, email)
		if err != nil {
			return err
		}
		if err := run(ctx, a, info.ID); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (%s) %s\n", email, info.ID, done)
		return nil
	})
}

func withAdmin(cmd *cobra.Command, run func(ctx context.Context, a *auth.Admin) error) error {
	return withDatabase(cmd, func(ctx context.Context, db *storage.DB) error {
		notifier, closeNotifier, err := userNotifier(cmd, ctx)
		if err != nil {
			return err
		}
		defer closeNotifier()
		return run(ctx, auth.NewAdmin(db, clock.System{}, notifier))
	})
}

// userNotifier returns a notifier that publishes user events through the
// configured Redis, so running servers apply a command's change at once.
// Without Redis it returns nil: servers then notice at their next recheck.
func userNotifier(cmd *cobra.Command, ctx context.Context) (runtime.UserNotifier, func(), error) {
	cfg, _, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Redis.URL == "" {
		return nil, func() {}, nil
	}
	store, err := kv.NewRedis(ctx, cfg.Redis.URL, cfg.Redis.Prefix, clock.System{})
	if err != nil {
		return nil, nil, fmt.Errorf("connect to redis: %w", err)
	}
	logger := newLogger(cfg.Log, os.Stderr, isTerminal(os.Stderr))
	return runtime.BusNotifier{Store: store, Logger: logger}, func() { _ = store.Close() }, nil
}
