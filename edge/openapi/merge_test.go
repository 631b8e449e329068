package openapi

import (
	"strings"
	"testing"
	"testing/fstest"

	"gopkg.in/yaml.v3"
)

const mergeBase = `
openapi: 3.1.0
tags:
  - name: System
paths:
  /health: {get: {responses: {"200": {description: ok}}}}
components:
  schemas:
    Error: {type: object}
`

func TestMergeAddsSectionPathsAndSchemas(t *testing.T) {
	files := fstest.MapFS{
		"sections/sync.yaml": {Data: []byte(`
tags:
  - name: Sync
paths:
  /v1/sync/info: {get: {responses: {"200": {description: ok}}}}
components:
  schemas:
    SyncInfo: {type: object}
`)},
	}

	merged, err := merge([]byte(mergeBase), files)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}

	var doc struct {
		Tags       []map[string]string       `yaml:"tags"`
		Paths      map[string]any            `yaml:"paths"`
		Components map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal(merged, &doc); err != nil {
		t.Fatalf("parse merged document: %v", err)
	}
	if len(doc.Tags) != 2 || doc.Tags[1]["name"] != "Sync" {
		t.Errorf("tags = %v, want System then Sync", doc.Tags)
	}
	for _, path := range []string{"/health", "/v1/sync/info"} {
		if _, ok := doc.Paths[path]; !ok {
			t.Errorf("merged paths lack %s", path)
		}
	}
	for _, schema := range []string{"Error", "SyncInfo"} {
		if _, ok := doc.Components["schemas"][schema]; !ok {
			t.Errorf("merged schemas lack %s", schema)
		}
	}
}

func TestMergeRejectsRedefinitionAndUnknownKeys(t *testing.T) {
	cases := map[string]struct {
		section string
		want    string
	}{
		"path twice":   {section: "paths:\n  /health: {}\n", want: `"/health" is already defined`},
		"schema twice": {section: "components:\n  schemas:\n    Error: {}\n", want: `"Error" is already defined`},
		"info key":     {section: "info: {title: x}\n", want: `key "info" is not allowed`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			files := fstest.MapFS{"sections/bad.yaml": {Data: []byte(tc.section)}}
			_, err := merge([]byte(mergeBase), files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("merge error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
