package mcp

import (
	"context"
	"time"

	"github.com/nexus-suite/nexus/plugins/host"
)

// process is one running plugin process. *host.Plugin implements it; the
// module's unit tests use a fake.
type process interface {
	Pid() int
	// Exited is closed when the process is gone.
	Exited() <-chan struct{}
	// ExitErr is why the process exited, once Exited is closed.
	ExitErr() error
	Health(ctx context.Context) error
	OpenSession(ctx context.Context) (host.Session, error)
	// Stop requests that the plugin exit, kills its process group after
	// grace and waits until the process is gone.
	Stop(ctx context.Context, grace time.Duration) error
}

// launcher starts plugin processes and reads plugin manifests.
type launcher interface {
	Launch(ctx context.Context, spec host.Spec) (process, error)
	ReadManifest(ctx context.Context, path string, sha256 []byte) (host.Manifest, error)
}

// hostLauncher is the launcher of plugins/host.
type hostLauncher struct{}

// Launch starts the plugin through host.Launch.
func (hostLauncher) Launch(ctx context.Context, spec host.Spec) (process, error) {
	plugin, err := host.Launch(ctx, spec)
	if err != nil {
		return nil, err
	}
	return plugin, nil
}

// ReadManifest reads the manifest through host.ReadManifest.
func (hostLauncher) ReadManifest(ctx context.Context, path string, sha256 []byte) (host.Manifest, error) {
	return host.ReadManifest(ctx, path, sha256)
}
