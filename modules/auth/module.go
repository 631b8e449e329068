// Package auth is the Authentication API section. This part publishes the
// signing keys; accounts, sign-in and sessions build on it.
package auth

import (
	"context"
	"errors"

	"github.com/nexus-suite/nexus/configs"
	"github.com/nexus-suite/nexus/edge"
	"github.com/nexus-suite/nexus/runtime"
	"github.com/nexus-suite/nexus/runtime/keyring"
)

// Name is the module's key under "modules" in the config.
const Name = "auth"

func init() {
	runtime.RegisterModule(Name, func() runtime.Module { return &Module{} })
}

// options is the module's config section; it has no options yet.
type options struct{}

// Module serves the /v1/auth routes.
type Module struct {
	keys *keyring.Keyring
}

// Info names the module.
func (m *Module) Info() runtime.ModuleInfo {
	return runtime.ModuleInfo{Name: Name, Title: "Authentication"}
}

// Decode reads modules.auth strictly.
func (m *Module) Decode(section map[string]any) error {
	return configs.DecodeSection("modules."+Name, section, &options{})
}

// Provision takes the process's keyring.
func (m *Module) Provision(_ context.Context, host *runtime.Host) error {
	m.keys = host.Keys
	return nil
}

// Validate checks that a keyring was provided.
func (m *Module) Validate() error {
	if m.keys == nil {
		return errors.New("no keyring: the host has no signing keys")
	}
	return nil
}

// Start does nothing: the module has no background work.
func (m *Module) Start(context.Context) error { return nil }

// Stop does nothing: the module holds nothing of its own.
func (m *Module) Stop(context.Context) error { return nil }

// Probe fails when no key can sign tokens.
func (m *Module) Probe(context.Context) error {
	if m.keys.SigningKeyID() == "" {
		return errors.New("no signing key")
	}
	return nil
}

// Routes lists the module's routes.
func (m *Module) Routes() []edge.Route {
	return []edge.Route{
		{
			Method: "GET", Path: "/v1/auth/jwks", Module: Name, Handler: m.jwks,
			Summary: "The public signing keys as a JSON Web Key Set",
		},
	}
}

// jwks writes the key set in RFC 7517 form, outside the envelope, so
// that standard JWT libraries can fetch it.
func (m *Module) jwks(r *edge.Request) error {
	r.Ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	r.Raw(200, "application/json", m.keys.JWKS())
	return nil
}
