package skills

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// manifestFile is the file at the root of every skill archive whose YAML
// front matter describes the skill.
const manifestFile = "SKILL.md"

// Limits of the front matter beyond those of the name.
const (
	maxDescriptionLength = 1024
	maxLicenseLength     = 256
	maxMetadataEntries   = 64
	maxMetadataKeyLength = 128
	maxMetadataValue     = 1024
)

// manifest is the content of SKILL.md. Keys of the front matter other than
// name, description, version, license and metadata are ignored, so that
// skills written for tools that read more keys (allowed-tools, say) publish
// unchanged. Those keys stay in SKILL.md inside the archive.
type manifest struct {
	Name        string
	Description string
	// Version is the version as written, or "" when the front matter has none.
	Version  string
	License  string
	Metadata map[string]string
	// Body is SKILL.md after the front matter.
	Body string
}

// fieldError is a problem with one field of the front matter, or with
// SKILL.md as a whole when Field is "SKILL.md". The handler turns it into a
// 400 VALIDATION_ERROR with details.field.
type fieldError struct {
	Field   string
	Message string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Message }

func manifestProblem(field, format string, args ...any) *fieldError {
	return &fieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// parseManifest reads the front matter of SKILL.md and checks its fields.
// A name that breaks the naming rules is returned in the manifest beside
// the error, so that the caller can still compare it with taken names.
func parseManifest(data []byte) (manifest, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	if !utf8.Valid(data) {
		return manifest{}, manifestProblem(manifestFile, "SKILL.md is not valid UTF-8")
	}

	front, body, err := splitFrontMatter(string(data))
	if err != nil {
		return manifest{}, err
	}
	m, err := decodeFrontMatter(front)
	if err != nil {
		return manifest{}, err
	}
	m.Body = body

	if err := checkName(m.Name); err != nil {
		return m, &fieldError{Field: "name", Message: err.Error()}
	}
	m.Description = strings.TrimSpace(m.Description)
	if m.Description == "" {
		return m, manifestProblem("description", "description is missing or blank, expected 1 to %d characters", maxDescriptionLength)
	}
	if n := utf8.RuneCountInString(m.Description); n > maxDescriptionLength {
		return m, manifestProblem("description", "description has %d characters, the maximum is %d", n, maxDescriptionLength)
	}
	if n := utf8.RuneCountInString(m.License); n > maxLicenseLength {
		return m, manifestProblem("license", "license has %d characters, the maximum is %d", n, maxLicenseLength)
	}
	return m, nil
}

// splitFrontMatter returns the YAML between the opening "---" line, which
// must be the first line, and the next "---" line, and the text after it.
func splitFrontMatter(text string) (front, body string, err error) {
	first, rest, found := strings.Cut(text, "\n")
	if strings.TrimRight(first, " \t\r") != "---" || !found {
		return "", "", manifestProblem(manifestFile, "SKILL.md must start with a YAML front matter block opened by a --- line")
	}

	offset := 0
	for offset <= len(rest) {
		line, _, _ := strings.Cut(rest[offset:], "\n")
		if strings.TrimRight(line, " \t\r") == "---" {
			front = rest[:offset]
			body = rest[min(len(rest), offset+len(line)+1):]
			return front, body, nil
		}
		offset += len(line) + 1
	}
	return "", "", manifestProblem(manifestFile, "the front matter of SKILL.md has no closing --- line")
}

// decodeFrontMatter reads the known keys of the front matter. Known keys
// must hold scalars (metadata a mapping of scalars), appear once and use no
// YAML aliases.
func decodeFrontMatter(front string) (manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(front), &doc); err != nil {
		return manifest{}, manifestProblem(manifestFile, "the front matter of SKILL.md is not valid YAML: %v", err)
	}
	var m manifest
	if doc.Kind == 0 {
		return m, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return manifest{}, manifestProblem(manifestFile, "the front matter of SKILL.md must be a YAML mapping")
	}

	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i].Value, root.Content[i+1]
		if seen[key] {
			return manifest{}, manifestProblem(key, "key %s appears more than once in the front matter", key)
		}
		seen[key] = true

		var err error
		switch key {
		case "name":
			m.Name, err = scalar(key, value)
		case "description":
			m.Description, err = scalar(key, value)
		case "version":
			m.Version, err = scalar(key, value)
		case "license":
			m.License, err = scalar(key, value)
		case "metadata":
			m.Metadata, err = metadata(value)
		}
		if err != nil {
			return manifest{}, err
		}
	}
	return m, nil
}

// scalar returns the text of a scalar value as written, "" for null. A
// number such as 1.0 keeps its text, not a converted value.
func scalar(field string, node *yaml.Node) (string, error) {
	switch {
	case node.Kind == yaml.AliasNode:
		return "", manifestProblem(field, "%s must not be a YAML alias", field)
	case node.Kind != yaml.ScalarNode:
		return "", manifestProblem(field, "%s must be a string", field)
	case node.Tag == "!!null":
		return "", nil
	}
	return node.Value, nil
}

// metadata returns the metadata mapping, whose keys and values are scalars
// kept as written.
func metadata(node *yaml.Node) (map[string]string, error) {
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil, nil
	}
	if node.Kind != yaml.MappingNode {
		return nil, manifestProblem("metadata", "metadata must be a mapping of strings to strings")
	}
	if len(node.Content)/2 > maxMetadataEntries {
		return nil, manifestProblem("metadata", "metadata has %d entries, the maximum is %d", len(node.Content)/2, maxMetadataEntries)
	}

	out := make(map[string]string, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, err := scalar("metadata", node.Content[i])
		if err != nil {
			return nil, err
		}
		value, err := scalar("metadata."+key, node.Content[i+1])
		if err != nil {
			return nil, err
		}
		switch {
		case key == "" || utf8.RuneCountInString(key) > maxMetadataKeyLength:
			return nil, manifestProblem("metadata", "metadata keys must have 1 to %d characters", maxMetadataKeyLength)
		case node.Content[i+1].Tag == "!!null":
			return nil, manifestProblem("metadata."+key, "metadata.%s is null, expected a string", key)
		case utf8.RuneCountInString(value) > maxMetadataValue:
			return nil, manifestProblem("metadata."+key, "metadata.%s has more than %d characters", key, maxMetadataValue)
		}
		if _, dup := out[key]; dup {
			return nil, manifestProblem("metadata."+key, "metadata key %s appears more than once", key)
		}
		out[key] = value
	}
	return out, nil
}
