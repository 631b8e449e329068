// Package openapi embeds the OpenAPI 3.1 document of the Nexus API and
// serves it as JSON at /v1/openapi.json. The document is openapi.yaml in
// this folder, which holds the system, auth, entitlements and billing
// routes and the shared components, merged with one file per later API
// section under sections/. The package also loads the document with
// kin-openapi and checks responses against it, for tests of any package.
package openapi

import (
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var base []byte

//go:embed sections
var sections embed.FS

var (
	mergeOnce sync.Once
	document  []byte
	mergeErr  error

	jsonOnce sync.Once
	jsonDoc  []byte
	jsonErr  error
)

// YAML returns the merged document. A section that does not merge
// panics, which the package's tests catch.
func YAML() []byte {
	mergeOnce.Do(func() { document, mergeErr = merge(base, sections) })
	if mergeErr != nil {
		panic(fmt.Sprintf("openapi: embedded document is invalid: %v", mergeErr))
	}
	return document
}

// JSON returns the document converted to JSON. The conversion runs once;
// a document that does not parse panics, which the package's tests catch.
func JSON() []byte {
	jsonOnce.Do(func() { jsonDoc, jsonErr = toJSON(YAML()) })
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

// Load parses the document with kin-openapi and resolves its references.
// Every call returns a new *openapi3.T, so the caller may change it. Load
// does not validate the document, which the caller does with Validate.
func Load() (*openapi3.T, error) {
	mergeOnce.Do(func() { document, mergeErr = merge(base, sections) })
	if mergeErr != nil {
		return nil, mergeErr
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(document)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	return doc, nil
}

// Route is one operation of the document.
type Route struct {
	// Method is the HTTP method in upper case, such as GET.
	Method string
	// Path is the path template, such as /v1/skills/{id}, which is also the
	// edge router's pattern syntax.
	Path string
}

// Routes returns the method and path of every operation in the document,
// sorted by path, then method. It panics when the embedded document does
// not load, which the package's tests catch.
func Routes() []Route {
	doc, err := Load()
	if err != nil {
		panic(fmt.Sprintf("openapi: embedded document is invalid: %v", err))
	}

	var routes []Route
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			routes = append(routes, Route{Method: method, Path: path})
		}
	}
	sort.Slice(routes, func(i, j int) bool {
		if routes[i].Path != routes[j].Path {
			return routes[i].Path < routes[j].Path
		}
		return routes[i].Method < routes[j].Method
	})
	return routes
}
