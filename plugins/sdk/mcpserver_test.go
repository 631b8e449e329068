package sdk

import (
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantCount int
		wantErr   bool
	}{
		{name: "Request", data: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, wantCount: 1},
		{name: "Notification", data: ` {"jsonrpc":"2.0","method":"notifications/initialized"}`, wantCount: 1},
		{name: "Batch", data: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, wantCount: 2},
		{name: "ErrNotJSON", data: `ping`, wantErr: true},
		{name: "ErrBatchItem", data: `[{"jsonrpc":"2.0","id":1,"method":"ping"}, 7]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			messages, err := decodeMessages([]byte(tt.data))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decode %s succeeded; want an error", tt.data)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode %s: %v", tt.data, err)
			}
			if len(messages) != tt.wantCount {
				t.Errorf("decoded %d messages; want %d", len(messages), tt.wantCount)
			}
			for _, message := range messages {
				if _, ok := message.(*jsonrpc.Request); !ok {
					t.Errorf("message %T; want a request", message)
				}
			}
		})
	}
}
