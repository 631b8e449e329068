package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crewjam/saml/samlsp"

	"github.com/nexus-suite/nexus/edge"
)

// maxSAMLMetadataBytes bounds the identity provider metadata an operator
// may store with a connection.
const maxSAMLMetadataBytes = 256 << 10

// ssoConnectionView is a connection as operators see it; the client
// secret is never returned.
type ssoConnectionView struct {
	ID           string    `json:"id"`
	Domain       string    `json:"domain"`
	Kind         string    `json:"kind"`
	Name         string    `json:"name"`
	RequireSSO   bool      `json:"require_sso"`
	OIDCIssuer   string    `json:"oidc_issuer,omitempty"`
	OIDCClientID string    `json:"oidc_client_id,omitempty"`
	StartURL     string    `json:"start_url"`
	CallbackURL  string    `json:"callback_url"`
	MetadataURL  string    `json:"metadata_url,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func (m *Module) connectionView(c ssoConnection) ssoConnectionView {
	view := ssoConnectionView{
		ID: c.ID, Domain: c.Domain, Kind: c.Kind, Name: c.Name, RequireSSO: c.RequireSSO,
		OIDCIssuer: c.OIDCIssuer, OIDCClientID: c.OIDCClientID,
		StartURL:    m.callbackURL("/v1/auth/sso/" + c.ID + "/start"),
		CallbackURL: m.callbackURL("/v1/auth/sso/" + c.ID + "/callback"),
		CreatedAt:   c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.Kind == ssoKindSAML {
		view.MetadataURL = m.callbackURL("/v1/auth/sso/" + c.ID + "/metadata")
	}
	return view
}

type createConnectionInput struct {
	Domain     string `json:"domain"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	RequireSSO bool   `json:"require_sso"`
	OIDC       *struct {
		Issuer       string `json:"issuer"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"oidc"`
	SAML *struct {
		IDPMetadataXML string `json:"idp_metadata_xml"`
	} `json:"saml"`
}

// adminCreateConnection serves POST /v1/admin/sso/connections.
func (m *Module) adminCreateConnection(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	var input createConnectionInput
	if err := r.Decode(&input); err != nil {
		return err
	}
	connection, err := m.validateConnection(input)
	if err != nil {
		return err
	}

	connection.ID, err = newID("sso_")
	if err != nil {
		return err
	}
	now := m.now().UTC().Truncate(time.Millisecond)
	connection.CreatedAt, connection.UpdatedAt = now, now
	if err := m.store.insertSSOConnection(r.Context(), m.masterKey, connection); err != nil {
		if errors.Is(err, errDomainTaken) {
			conflict := edge.Conflict("the domain " + connection.Domain + " already has an SSO connection")
			conflict.Details = map[string]any{"field": "domain"}
			return conflict
		}
		return err
	}
	r.Logger().Info("SSO connection created", slog.String("operator_id", r.Principal.UserID),
		slog.String("connection_id", connection.ID), slog.String("domain", connection.Domain), slog.String("kind", connection.Kind))
	return r.JSON(http.StatusCreated, m.connectionView(connection))
}

// validateConnection checks the input of a new connection.
func (m *Module) validateConnection(input createConnectionInput) (ssoConnection, error) {
	domain := strings.ToLower(strings.TrimSpace(input.Domain))
	if !validDomain(domain) {
		return ssoConnection{}, edge.Validation("domain", "domain must be a DNS name such as example.com")
	}
	name := strings.TrimSpace(input.Name)
	if name == "" || len(name) > 100 {
		return ssoConnection{}, edge.Validation("name", "name must be 1 to 100 characters")
	}
	connection := ssoConnection{Domain: domain, Kind: input.Kind, Name: name, RequireSSO: input.RequireSSO}

	switch input.Kind {
	case ssoKindOIDC:
		if input.OIDC == nil || input.SAML != nil {
			return ssoConnection{}, edge.Validation("oidc", "an oidc connection needs the oidc object and no saml object")
		}
		issuer, err := url.Parse(input.OIDC.Issuer)
		if err != nil || (issuer.Scheme != "https" && issuer.Scheme != "http") || issuer.Host == "" {
			return ssoConnection{}, edge.Validation("oidc.issuer", "oidc.issuer must be the identity provider's absolute issuer URL")
		}
		if input.OIDC.ClientID == "" || input.OIDC.ClientSecret == "" {
			return ssoConnection{}, edge.Validation("oidc.client_id", "oidc.client_id and oidc.client_secret are required")
		}
		connection.OIDCIssuer, connection.OIDCClientID, connection.OIDCSecret = input.OIDC.Issuer, input.OIDC.ClientID, input.OIDC.ClientSecret
	case ssoKindSAML:
		if input.SAML == nil || input.OIDC != nil {
			return ssoConnection{}, edge.Validation("saml", "a saml connection needs the saml object and no oidc object")
		}
		if len(input.SAML.IDPMetadataXML) > maxSAMLMetadataBytes {
			return ssoConnection{}, edge.Validation("saml.idp_metadata_xml", fmt.Sprintf("the metadata must be at most %d bytes", maxSAMLMetadataBytes))
		}
		if _, err := idpSSOURL([]byte(input.SAML.IDPMetadataXML)); err != nil {
			return ssoConnection{}, edge.Validation("saml.idp_metadata_xml", "the identity provider metadata is invalid: "+err.Error())
		}
		connection.SAMLMetadata = input.SAML.IDPMetadataXML
	default:
		return ssoConnection{}, edge.Validation("kind", `kind must be "oidc" or "saml"`)
	}
	return connection, nil
}

// idpSSOURL parses IdP metadata and returns its HTTP-Redirect single
// sign-on URL, checking that it has a signing certificate.
func idpSSOURL(metadata []byte) (string, error) {
	descriptor, err := samlsp.ParseMetadata(metadata)
	if err != nil {
		return "", errors.New("it is not SAML metadata XML")
	}
	for _, idp := range descriptor.IDPSSODescriptors {
		hasKey := false
		for _, key := range idp.KeyDescriptors {
			if key.Use != "encryption" && len(key.KeyInfo.X509Data.X509Certificates) > 0 {
				hasKey = true
			}
		}
		if !hasKey {
			return "", errors.New("it has no signing certificate")
		}
		for _, service := range idp.SingleSignOnServices {
			if service.Binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" {
				return service.Location, nil
			}
		}
	}
	return "", errors.New("it has no IDPSSODescriptor with an HTTP-Redirect SingleSignOnService")
}

func validDomain(domain string) bool {
	if len(domain) < 3 || len(domain) > 253 || !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// adminListConnections serves GET /v1/admin/sso/connections.
func (m *Module) adminListConnections(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	connections, err := m.store.ssoConnections(r.Context(), m.masterKey, `ORDER BY domain`)
	if err != nil {
		return err
	}
	views := make([]ssoConnectionView, 0, len(connections))
	for _, c := range connections {
		views = append(views, m.connectionView(c))
	}
	return r.JSON(http.StatusOK, views)
}

// adminUpdateConnection serves PATCH /v1/admin/sso/connections/{id}, which
// turns require_sso on or off.
func (m *Module) adminUpdateConnection(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	var input struct {
		RequireSSO *bool `json:"require_sso"`
	}
	if err := r.Decode(&input); err != nil {
		return err
	}
	if input.RequireSSO == nil {
		return edge.Validation("require_sso", "require_sso is required")
	}

	id := r.Param("id")
	err := m.store.setRequireSSO(r.Context(), id, *input.RequireSSO, m.now())
	if errors.Is(err, errNotFound) {
		return edge.NotFound("no SSO connection with this id")
	}
	if err != nil {
		return err
	}
	connection, err := m.store.ssoConnection(r.Context(), m.masterKey, `WHERE id = $1`, id)
	if err != nil {
		return err
	}
	r.Logger().Info("SSO connection updated", slog.String("operator_id", r.Principal.UserID),
		slog.String("connection_id", id), slog.Bool("require_sso", *input.RequireSSO))
	return r.JSON(http.StatusOK, m.connectionView(connection))
}

// adminDeleteConnection serves DELETE /v1/admin/sso/connections/{id}. The
// accounts stay; their identities of the connection are unlinked.
func (m *Module) adminDeleteConnection(r *edge.Request) error {
	if err := m.requireAdmin(r); err != nil {
		return err
	}
	id := r.Param("id")
	err := m.store.deleteSSOConnection(r.Context(), id)
	if errors.Is(err, errNotFound) {
		return edge.NotFound("no SSO connection with this id")
	}
	if err != nil {
		return err
	}
	m.ssoProviders.Delete(id)
	r.Logger().Info("SSO connection deleted", slog.String("operator_id", r.Principal.UserID), slog.String("connection_id", id))
	return r.JSON(http.StatusOK, map[string]any{"id": id, "deleted": true})
}
