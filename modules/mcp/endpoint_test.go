package mcp

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
)

// silentSession records what the host sends and never responds.
type silentSession struct {
	mu   sync.Mutex
	sent []string
}

func (s *silentSession) Send(_ context.Context, message []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, string(message))
	return nil
}

func (s *silentSession) Recv(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, io.EOF
}

func (s *silentSession) Close() error { return nil }

func TestCollectTimesOutWithErrors(t *testing.T) {
	stream := &silentSession{}
	sess := &mcpSession{stream: stream, pending: map[string]chan []byte{}, done: make(chan struct{})}
	responses := make(chan []byte, 2)
	keys := []string{"1", `"two"`}
	if err := sess.register(keys, responses); err != nil {
		t.Fatalf("register: %v", err)
	}
	sess.deliver([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), discardLogger())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	collected := (&Module{}).collect(ctx, nil, sess, keys, responses)

	if len(collected) != 2 || !strings.Contains(string(collected[0]), `"result"`) {
		t.Fatalf("collected = %q, want the response and one error", collected)
	}
	var timedOut struct {
		ID    string `json:"id"`
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(collected[1], &timedOut); err != nil || timedOut.ID != "two" || timedOut.Error.Code != codeInternalError {
		t.Errorf("error response = %s, want id two with code %d", collected[1], codeInternalError)
	}
	if len(stream.sent) != 1 || !strings.Contains(stream.sent[0], `"notifications/cancelled"`) || !strings.Contains(stream.sent[0], `"requestId":"two"`) {
		t.Errorf("sent to the plugin = %q, want a cancellation of request two", stream.sent)
	}
	if len(sess.pending) != 0 {
		t.Errorf("pending = %v, want none after the timeout", sess.pending)
	}
}

func TestParseMessages(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		count   int
		batch   bool
		wantErr bool
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, 1, false, false},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 1, false, false},
		{"response", `{"jsonrpc":"2.0","id":"a","result":{}}`, 1, false, false},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"x"}]`, 2, true, false},
		{"empty", ` `, 0, false, true},
		{"empty batch", `[]`, 0, false, true},
		{"old version", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, 0, false, true},
		{"neither", `{"jsonrpc":"2.0","id":1}`, 0, false, true},
		{"not JSON", `{"jsonrpc":`, 0, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			messages, batch, err := parseMessages([]byte(tc.body))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("parseMessages accepted %s", tc.body)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMessages: %v", err)
			}
			if len(messages) != tc.count || batch != tc.batch {
				t.Errorf("messages = %d batch %v, want %d batch %v", len(messages), batch, tc.count, tc.batch)
			}
		})
	}
}

func TestNegotiatedVersion(t *testing.T) {
	if version, ok := negotiatedVersion([]byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}`)); !ok || version != "2025-06-18" {
		t.Errorf("negotiatedVersion = %q %v, want 2025-06-18", version, ok)
	}
	if _, ok := negotiatedVersion([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}`)); ok {
		t.Error("an error response gave a version")
	}
}
