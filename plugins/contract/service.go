package contract

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ServiceName is the full gRPC name of the plugin service.
const ServiceName = "nexus.plugin.v1.MCPPlugin"

// Full method names, as they appear in gRPC logs and interceptors.
const (
	methodManifest  = "/" + ServiceName + "/Manifest"
	methodConfigure = "/" + ServiceName + "/Configure"
	methodSession   = "/" + ServiceName + "/Session"
	methodShutdown  = "/" + ServiceName + "/Shutdown"
)

// Server is the plugin side of the service, implemented by plugins/sdk.
type Server interface {
	// Manifest returns the plugin's manifest.
	Manifest(ctx context.Context) (Manifest, error)
	// Configure passes the server's validated config before any session
	// opens. An error rejects the config and fails the start.
	Configure(ctx context.Context, config json.RawMessage) error
	// Session serves one MCP session until the host closes its send side,
	// the stream's context ends or the plugin ends the session.
	Session(stream SessionStream) error
	// Shutdown starts a graceful shutdown: sessions end and the process
	// exits soon after the call returns.
	Shutdown(ctx context.Context) error
}

// SessionStream is the plugin's side of one session stream. Send and Recv
// may run in two goroutines at once, but neither may be called from two
// goroutines at once.
type SessionStream interface {
	Context() context.Context
	// Send writes one JSON-RPC message to the host.
	Send(message []byte) error
	// Recv reads the next JSON-RPC message from the host; io.EOF when the
	// host closed the session.
	Recv() ([]byte, error)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Manifest", Handler: handleManifest},
		{MethodName: "Configure", Handler: handleConfigure},
		{MethodName: "Shutdown", Handler: handleShutdown},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Session", Handler: handleSession, ServerStreams: true, ClientStreams: true},
	},
	Metadata: "plugins/contract/service.go",
}

// Register adds the plugin service backed by srv to a gRPC server.
func Register(registrar grpc.ServiceRegistrar, srv Server) {
	registrar.RegisterService(&serviceDesc, srv)
}

func handleManifest(srv any, ctx context.Context, decode func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := decode(in); err != nil {
		return nil, err
	}

	call := func(ctx context.Context, _ any) (any, error) {
		manifest, err := srv.(Server).Manifest(ctx)
		if err != nil {
			return nil, err
		}
		encoded, err := json.Marshal(manifest)
		if err != nil {
			return nil, fmt.Errorf("encode manifest: %w", err)
		}
		return wrapperspb.Bytes(encoded), nil
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodManifest}, call)
}

func handleConfigure(srv any, ctx context.Context, decode func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.BytesValue)
	if err := decode(in); err != nil {
		return nil, err
	}

	call := func(ctx context.Context, req any) (any, error) {
		config := req.(*wrapperspb.BytesValue).GetValue()
		if err := srv.(Server).Configure(ctx, config); err != nil {
			return nil, err
		}
		return new(emptypb.Empty), nil
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodConfigure}, call)
}

func handleShutdown(srv any, ctx context.Context, decode func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(emptypb.Empty)
	if err := decode(in); err != nil {
		return nil, err
	}

	call := func(ctx context.Context, _ any) (any, error) {
		if err := srv.(Server).Shutdown(ctx); err != nil {
			return nil, err
		}
		return new(emptypb.Empty), nil
	}
	if interceptor == nil {
		return call(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: methodShutdown}, call)
}

func handleSession(srv any, stream grpc.ServerStream) error {
	return srv.(Server).Session(serverSessionStream{stream})
}

// serverSessionStream adapts a gRPC server stream of BytesValue messages.
type serverSessionStream struct {
	grpc.ServerStream
}

func (s serverSessionStream) Send(message []byte) error {
	return s.SendMsg(wrapperspb.Bytes(message))
}

func (s serverSessionStream) Recv() ([]byte, error) {
	in := new(wrapperspb.BytesValue)
	if err := s.RecvMsg(in); err != nil {
		return nil, err
	}
	return in.GetValue(), nil
}

// Client is the host side of the service over one plugin's gRPC connection.
type Client struct {
	conn grpc.ClientConnInterface
}

// NewClient returns a client of the plugin service on conn.
func NewClient(conn grpc.ClientConnInterface) *Client {
	return &Client{conn: conn}
}

// Manifest reads the plugin's manifest and validates it.
func (c *Client) Manifest(ctx context.Context) (Manifest, error) {
	out := new(wrapperspb.BytesValue)
	if err := c.conn.Invoke(ctx, methodManifest, new(emptypb.Empty), out); err != nil {
		return Manifest{}, err
	}

	var manifest Manifest
	if err := json.Unmarshal(out.GetValue(), &manifest); err != nil {
		return Manifest{}, fmt.Errorf("decode plugin manifest: %w", err)
	}
	if err := manifest.Validate(); err != nil {
		return Manifest{}, fmt.Errorf("plugin manifest: %w", err)
	}
	return manifest, nil
}

// Configure passes config to the plugin.
func (c *Client) Configure(ctx context.Context, config json.RawMessage) error {
	return c.conn.Invoke(ctx, methodConfigure, wrapperspb.Bytes(config), new(emptypb.Empty))
}

// Shutdown requests a graceful shutdown of the plugin.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.conn.Invoke(ctx, methodShutdown, new(emptypb.Empty), new(emptypb.Empty))
}

// Session opens one session stream. The stream lives until ctx ends, the
// host closes its send side and the plugin returns, or the plugin fails.
func (c *Client) Session(ctx context.Context) (*ClientSessionStream, error) {
	stream, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], methodSession)
	if err != nil {
		return nil, err
	}
	return &ClientSessionStream{stream: stream}, nil
}

// ClientSessionStream is the host's side of one session stream. Send and
// Recv may run in two goroutines at once, but neither may be called from
// two goroutines at once.
type ClientSessionStream struct {
	stream grpc.ClientStream
}

// Send writes one JSON-RPC message to the plugin.
func (s *ClientSessionStream) Send(message []byte) error {
	return s.stream.SendMsg(wrapperspb.Bytes(message))
}

// Recv reads the next JSON-RPC message from the plugin; io.EOF when the
// plugin ended the session.
func (s *ClientSessionStream) Recv() ([]byte, error) {
	in := new(wrapperspb.BytesValue)
	if err := s.stream.RecvMsg(in); err != nil {
		return nil, err
	}
	return in.GetValue(), nil
}

// CloseSend signals to the plugin that the host sends no more messages.
func (s *ClientSessionStream) CloseSend() error {
	return s.stream.CloseSend()
}

// GRPCPlugin is the go-plugin plugin of the service. The plugin process sets
// Impl, and the host leaves it nil and dispenses a *Client.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl Server
}

// GRPCServer registers the service on the plugin's gRPC server.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, server *grpc.Server) error {
	if p.Impl == nil {
		return fmt.Errorf("%s plugin has no server", PluginName)
	}
	Register(server, p.Impl)
	return nil
}

// GRPCClient returns the host's client of the service on conn.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return NewClient(conn), nil
}
