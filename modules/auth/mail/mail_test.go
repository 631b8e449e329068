package mail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/nexus-suite/nexus/modules/auth/mail"
)

func TestLogSenderWritesLink(t *testing.T) {
	var out bytes.Buffer
	sender := mail.NewLogSender(slog.New(slog.NewJSONHandler(&out, nil)))
	message := verificationMessage("ada@example.com")

	if err := sender.Send(context.Background(), message); err != nil {
		t.Fatalf("Send: %v", err)
	}

	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log output %q is not one JSON line: %v", out.String(), err)
	}
	want := map[string]string{
		"level":   "INFO",
		"msg":     "mail not sent: log sender",
		"to":      message.To,
		"subject": message.Subject,
		"text":    message.Text,
	}
	for key, value := range want {
		if line[key] != value {
			t.Errorf("log field %s = %v, want %q", key, line[key], value)
		}
	}
}

func TestLogSenderNilLogger(t *testing.T) {
	sender := mail.NewLogSender(nil)
	if err := sender.Send(context.Background(), verificationMessage("ada@example.com")); err != nil {
		t.Errorf("Send: %v", err)
	}
}
