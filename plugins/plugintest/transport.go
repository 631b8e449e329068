package plugintest

import (
	"context"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/nexus-suite/nexus/plugins/host"
)

// SessionTransport is an mcp.Transport over a plugin session, so an
// mcp.Client talks to a plugin through plugins/host without the HTTP edge.
// Closing the client's session closes the plugin session.
type SessionTransport struct {
	Session host.Session
}

// Connect returns the connection of the transport's session. Call it once.
func (t SessionTransport) Connect(context.Context) (mcp.Connection, error) {
	return sessionConnection{session: t.Session}, nil
}

type sessionConnection struct {
	session host.Session
}

func (c sessionConnection) Read(ctx context.Context) (jsonrpc.Message, error) {
	data, err := c.session.Recv(ctx)
	if err != nil {
		return nil, err
	}
	message, err := jsonrpc.DecodeMessage(data)
	if err != nil {
		return nil, fmt.Errorf("decode message from plugin: %w", err)
	}
	return message, nil
}

func (c sessionConnection) Write(ctx context.Context, message jsonrpc.Message) error {
	data, err := jsonrpc.EncodeMessage(message)
	if err != nil {
		return fmt.Errorf("encode message for plugin: %w", err)
	}
	return c.session.Send(ctx, data)
}

func (c sessionConnection) Close() error {
	return c.session.Close()
}

func (c sessionConnection) SessionID() string { return "" }
