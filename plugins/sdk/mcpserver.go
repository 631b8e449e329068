package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpBackend runs sessions on an *mcp.Server in the plugin's process.
type mcpBackend struct {
	newServer func(context.Context, json.RawMessage) (*mcp.Server, error)

	mu     sync.Mutex
	server *mcp.Server
}

func (b *mcpBackend) Configure(ctx context.Context, config json.RawMessage) error {
	server, err := b.newServer(ctx, config)
	if err != nil {
		return err
	}
	if server == nil {
		return errors.New("plugin built no MCP server")
	}

	b.mu.Lock()
	b.server = server
	b.mu.Unlock()
	return nil
}

// Open connects a new session of the server to a pipe whose other end is
// the returned Conn.
func (b *mcpBackend) Open(ctx context.Context) (Conn, error) {
	b.mu.Lock()
	server := b.server
	b.mu.Unlock()
	if server == nil {
		return nil, errors.New("plugin is not configured")
	}

	pipe := newMessagePipe()
	session, err := server.Connect(ctx, pipeTransport{pipe}, nil)
	if err != nil {
		return nil, fmt.Errorf("connect MCP session: %w", err)
	}
	return &pipeConn{pipe: pipe, session: session}, nil
}

// messagePipe carries decoded messages from the host to the server session
// and encoded messages back. Closing it ends both directions.
type messagePipe struct {
	toServer chan jsonrpc.Message
	toHost   chan []byte

	closeOnce sync.Once
	closed    chan struct{}
}

func newMessagePipe() *messagePipe {
	return &messagePipe{
		toServer: make(chan jsonrpc.Message),
		toHost:   make(chan []byte),
		closed:   make(chan struct{}),
	}
}

func (p *messagePipe) close() {
	p.closeOnce.Do(func() { close(p.closed) })
}

// pipeConn is the host's end of a messagePipe.
type pipeConn struct {
	pipe    *messagePipe
	session *mcp.ServerSession
}

// Write decodes one JSON-RPC message, or each message of a JSON array batch,
// and passes it to the server session.
func (c *pipeConn) Write(ctx context.Context, message []byte) error {
	messages, err := decodeMessages(message)
	if err != nil {
		return err
	}

	for _, decoded := range messages {
		select {
		case c.pipe.toServer <- decoded:
		case <-c.pipe.closed:
			return errSessionClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *pipeConn) Read(ctx context.Context) ([]byte, error) {
	select {
	case message := <-c.pipe.toHost:
		return message, nil
	case <-c.pipe.closed:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close ends the server session and waits for it to finish.
func (c *pipeConn) Close() error {
	c.pipe.close()
	err := c.session.Close()
	if err != nil && !errors.Is(err, mcp.ErrConnectionClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, errSessionClosed) {
		return err
	}
	return nil
}

// decodeMessages decodes one JSON-RPC message or a JSON array of them.
func decodeMessages(data []byte) ([]jsonrpc.Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		message, err := jsonrpc.DecodeMessage(trimmed)
		if err != nil {
			return nil, fmt.Errorf("decode JSON-RPC message: %w", err)
		}
		return []jsonrpc.Message{message}, nil
	}

	var batch []json.RawMessage
	if err := json.Unmarshal(trimmed, &batch); err != nil {
		return nil, fmt.Errorf("decode JSON-RPC batch: %w", err)
	}
	messages := make([]jsonrpc.Message, 0, len(batch))
	for _, raw := range batch {
		message, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			return nil, fmt.Errorf("decode JSON-RPC batch: %w", err)
		}
		messages = append(messages, message)
	}
	return messages, nil
}

// pipeTransport is the mcp.Transport of the server's end of a messagePipe.
type pipeTransport struct {
	pipe *messagePipe
}

func (t pipeTransport) Connect(context.Context) (mcp.Connection, error) {
	return serverConn(t), nil
}

// serverConn is the server's end of a messagePipe, as an mcp.Connection.
type serverConn struct {
	pipe *messagePipe
}

func (c serverConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	select {
	case message := <-c.pipe.toServer:
		return message, nil
	case <-c.pipe.closed:
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c serverConn) Write(ctx context.Context, message jsonrpc.Message) error {
	encoded, err := jsonrpc.EncodeMessage(message)
	if err != nil {
		return fmt.Errorf("encode JSON-RPC message: %w", err)
	}

	select {
	case c.pipe.toHost <- encoded:
		return nil
	case <-c.pipe.closed:
		return mcp.ErrConnectionClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c serverConn) Close() error {
	c.pipe.close()
	return nil
}

func (c serverConn) SessionID() string { return "" }
