package app_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/storage/storagetest"
)

// tcpProxy forwards a loopback port to a target and can cut every
// connection and refuse new ones, to make a server unreachable on demand.
type tcpProxy struct {
	target string
	addr   string

	mu       sync.Mutex
	listener net.Listener
	conns    []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &tcpProxy{target: target, addr: listener.Addr().String()}
	p.serve(listener)
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) serve(listener net.Listener) {
	p.mu.Lock()
	p.listener = listener
	p.mu.Unlock()

	go func() {
		for {
			client, err := listener.Accept()
			if err != nil {
				return
			}
			upstream, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, upstream)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(upstream, client); upstream.Close() }()
			go func() { _, _ = io.Copy(client, upstream); client.Close() }()
		}
	}()
}

// down closes the listener and every proxied connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		p.listener.Close()
		p.listener = nil
	}
	for _, conn := range p.conns {
		conn.Close()
	}
	p.conns = nil
}

// up listens again on the same port.
func (p *tcpProxy) up(t *testing.T) {
	t.Helper()
	listener, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy listen again on %s: %v", p.addr, err)
	}
	p.serve(listener)
}

func readyState(t *testing.T, s *testServer) (int, map[string]string) {
	t.Helper()
	res := s.get(t, "/ready", "")
	var body struct {
		Data struct {
			Checks map[string]struct {
				Status string `json:"status"`
			} `json:"checks"`
		} `json:"data"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil {
		t.Fatalf("decode /ready %s: %v", res.body, err)
	}
	checks := map[string]string{}
	for name, check := range body.Data.Checks {
		checks[name] = check.Status
	}
	return res.status, checks
}

func TestReadyFollowsPostgres(t *testing.T) {
	schemaURL, err := url.Parse(storagetest.PostgresURL(t))
	if err != nil {
		t.Fatalf("parse url: %v", err)
	}
	proxy := newTCPProxy(t, schemaURL.Host)
	schemaURL.Host = proxy.addr
	s := startServer(t, serverOption{config: func(cfg *configs.Config) {
		cfg.Database.URL = schemaURL.String()
		cfg.Database.ReadyTimeout = 300 * time.Millisecond
	}})

	if status, checks := readyState(t, s); status != http.StatusOK {
		t.Fatalf("/ready = %d %v, want 200", status, checks)
	}

	proxy.down()
	status, checks := readyState(t, s)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("/ready with PostgreSQL unreachable = %d, want 503", status)
	}
	if checks["database"] != "fail" || checks["redis"] != "ok" {
		t.Errorf("checks = %v, want database fail and redis ok", checks)
	}

	proxy.up(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, checks = readyState(t, s)
		if status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != http.StatusOK {
		t.Fatalf("/ready after PostgreSQL returned = %d %v, want 200", status, checks)
	}
}

func TestReadyWhenPoolExhausted(t *testing.T) {
	s := startServer(t, serverOption{engine: enginePostgres, config: func(cfg *configs.Config) {
		cfg.Database.MaxOpenConns = 1
		cfg.Database.ReadyTimeout = 200 * time.Millisecond
	}})

	conn, err := s.app.DB().Conn(t.Context())
	if err != nil {
		t.Fatalf("take the only connection: %v", err)
	}
	status, checks := readyState(t, s)
	if status != http.StatusServiceUnavailable || checks["database"] != "fail" {
		t.Errorf("/ready with the pool exhausted = %d %v, want 503 with database fail", status, checks)
	}

	conn.Close()
	if status, _ := readyState(t, s); status != http.StatusOK {
		t.Errorf("/ready after the connection returned = %d, want 200", status)
	}
	if !strings.Contains(s.get(t, "/metrics", "").String(), "nexus_db_pool_wait_total") {
		t.Error("/metrics lacks the pool wait counter")
	}
}
