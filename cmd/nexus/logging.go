package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/nexus-suite/nexus/configs"
)

// newLogger returns the process logger: JSON, or text when format is auto
// and the output is a terminal.
func newLogger(cfg configs.Log, w io.Writer, terminal bool) *slog.Logger {
	var level slog.Level
	switch cfg.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	options := &slog.HandlerOptions{Level: level}

	text := cfg.Format == "text" || (cfg.Format == "auto" && terminal)
	if text {
		return slog.New(slog.NewTextHandler(w, options))
	}
	return slog.New(slog.NewJSONHandler(w, options))
}

func isTerminal(file *os.File) bool {
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
