package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/valyala/fasthttp"
)

// bareBody has the shape and size of the nexus response to GET /v1/entitlements
// for the default tier with the benchmark's limits, envelope included.
const bareBody = `{"data":{"tier":"core","tier_name":"Core","source":"default","features":[],` +
	`"limits":{"requests_per_minute":1000000000,"burst":1000000000,"sync_bytes":0,` +
	`"sync_item_bytes":0,"sync_batch_items":0,"skill_publishes_per_month":0,"mcp_servers":0},"trial":null}}`

// runBare serves bareBody on every path until SIGINT or SIGTERM.
func runBare(args []string) error {
	flags := newFlagSet("bare")
	listen := flags.String("listen", "", "loopback address to listen on, such as 127.0.0.1:9000 (required)")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if err := checkLoopbackAddress(*listen); err != nil {
		return fmt.Errorf("%w: -listen: %w", errUsage, err)
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	server := newBareServer()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve on %s: %w", *listen, err)
	case <-ctx.Done():
	}
	if err := server.Shutdown(); err != nil {
		return fmt.Errorf("shut down server on %s: %w", *listen, err)
	}
	return <-served
}

// newBareServer returns a fasthttp server whose handler writes bareBody as
// application/json and does nothing else.
func newBareServer() *fasthttp.Server {
	body := []byte(bareBody)
	return &fasthttp.Server{
		Name: "nexusbench",
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		},
	}
}

// checkLoopbackAddress returns an error unless address is host:port with a
// loopback IP or localhost as its host.
func checkLoopbackAddress(address string) error {
	if address == "" {
		return fmt.Errorf("address is missing")
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("invalid address %q: %w", address, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not on the loopback interface; use 127.0.0.1", address)
	}
	return nil
}
