// Package openapi embeds the OpenAPI 3.1 document of the Nexus API, which
// is kept in this folder as openapi.yaml and served as JSON at
// /v1/openapi.json.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var document []byte

var (
	jsonOnce sync.Once
	jsonDoc  []byte
	jsonErr  error
)

// YAML returns the document as written.
func YAML() []byte { return document }

// JSON returns the document converted to JSON. The conversion runs once;
// a document that does not parse panics, which the package's tests catch.
func JSON() []byte {
	jsonOnce.Do(func() { jsonDoc, jsonErr = toJSON(document) })
	if jsonErr != nil {
		panic(fmt.Sprintf("openapi: embedded document is invalid: %v", jsonErr))
	}
	return jsonDoc
}

func toJSON(source []byte) ([]byte, error) {
	var tree any
	if err := yaml.Unmarshal(source, &tree); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	return json.Marshal(tree)
}
