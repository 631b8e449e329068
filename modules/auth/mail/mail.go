// Package mail sends the account mails of the auth module (email
// verification, password reset) through a Sender: the log sender for
// development, or an SMTP server.
package mail

import (
	"context"
	"log/slog"
)

// Message is one plain-text mail. Text contains the whole body, including
// any link the recipient has to follow.
type Message struct {
	// To is the recipient address, either "user@example.com" or
	// "Name <user@example.com>".
	To      string
	Subject string
	Text    string
}

// Sender delivers a Message. Send returns nil once the message has been handed
// over, and an error when it could not be or when ctx ended first.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// NewLogSender returns the default Sender, which sends nothing and instead
// logs each message, text included, at info level, so a developer can follow
// the link in it. A nil logger means slog.Default().
//
// NOTE: the logged text contains the one-time token of the link, so the log
// sender is for development and tests, never for a deployment with real users.
func NewLogSender(logger *slog.Logger) Sender {
	if logger == nil {
		logger = slog.Default()
	}
	return &logSender{logger: logger}
}

type logSender struct {
	logger *slog.Logger
}

func (s *logSender) Send(ctx context.Context, m Message) error {
	s.logger.InfoContext(ctx, "mail not sent: log sender",
		slog.String("to", m.To),
		slog.String("subject", m.Subject),
		slog.String("text", m.Text))
	return nil
}
