package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/cmd/nexus/app"
	"github.com/nexus-suite/nexus/configs"
)

func serveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the API server",
		Long: `Run the API server. With no config file it listens on 127.0.0.1:8080,
keeps its data in ./data (SQLite) and uses an in-process stand-in for Redis.
SIGINT or SIGTERM shuts it down gracefully; SIGHUP reloads the config file
and applies a changed module set.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return serve(cfg, path)
		},
	}
}

func serve(cfg *configs.Config, path string) error {
	output := newBufferedWriter(os.Stderr)
	defer output.Close()
	logger := newLogger(cfg.Log, output, isTerminal(os.Stderr))
	slog.SetDefault(logger)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	server, err := app.New(ctx, app.Options{Config: cfg, ConfigPath: path, Environ: os.Environ(), Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		server.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}

	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	go func() {
		for range hangups {
			logger.Info("reloading config", slog.String("file", path))
			if err := server.Reload(ctx); err != nil {
				logger.Error("config reload rejected; the running config stays in force", slog.String("error", err.Error()))
				continue
			}
			logger.Info("config reloaded")
		}
	}()

	return server.Serve(ctx, ln)
}

// loadConfig reads the --config file, if any, over the embedded defaults
// and the environment.
func loadConfig(cmd *cobra.Command) (*configs.Config, string, error) {
	path, err := cmd.Flags().GetString("config")
	if err != nil {
		return nil, "", err
	}
	cfg, err := configs.Load(path, os.Environ())
	if err != nil {
		return nil, "", err
	}
	return cfg, path, nil
}
