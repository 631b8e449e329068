package configs

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/rawbytes"
	"github.com/knadh/koanf/v2"
)

//go:embed nexus.yaml
var defaultYAML []byte

// DefaultYAML returns a copy of the embedded nexus.yaml: the defaults of
// every option, each with a comment that documents it.
func DefaultYAML() []byte {
	return bytes.Clone(defaultYAML)
}

// Load builds the configuration in layers: the embedded defaults, then the
// YAML file at path unless path is "", then the NEXUS_* variables of
// environ (in os.Environ form, "KEY=value"), then Validate.
//
// A file key whose value is empty (null) keeps the value of the layer below.
// Every problem is collected before Load returns: the error is then an
// *Error with one Problem per unknown key, wrong type or out-of-range
// value, except when the file cannot be read or is not valid YAML.
func Load(path string, environ []string) (*Config, error) {
	ko := koanf.New(".")
	if err := ko.Load(rawbytes.Provider(defaultYAML), yaml.Parser()); err != nil {
		return nil, fmt.Errorf("load embedded defaults: %w", err)
	}

	if path != "" {
		if err := mergeFile(ko, path); err != nil {
			return nil, err
		}
	}

	envSources, problems := applyEnv(ko, environ)

	var cfg Config
	err := ko.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{DecoderConfig: decoderConfig(&cfg)})
	decodeFailures := decodeErrorProblems("", "configs.Config", err)
	problems = append(problems, decodeFailures...)
	if len(decodeFailures) > 0 {
		salvageTiers(&cfg, ko)
	}
	problems = append(problems, withoutKeysOf(cfg.validate(), decodeFailures)...)

	for i := range problems {
		if problems[i].Source == "" {
			problems[i].Source = sourceOf(problems[i].Key, envSources)
		}
	}
	if err := problems.err(path); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Check loads the configuration as Load does and returns its error, for
// `nexus config check FILE`.
func Check(path string, environ []string) error {
	_, err := Load(path, environ)
	return err
}

// mergeFile parses the YAML file at path and merges it over ko, after
// dropping its null values so that they keep the defaults.
func mergeFile(ko *koanf.Koanf, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}

	file := koanf.New(".")
	if err := file.Load(rawbytes.Provider(data), yaml.Parser()); err != nil {
		return fmt.Errorf("parse config file %s: %w", path, err)
	}
	for _, key := range file.Keys() {
		if file.Get(key) == nil {
			file.Delete(key)
		}
	}

	if err := ko.Merge(file); err != nil {
		return fmt.Errorf("merge config file %s: %w", path, err)
	}
	return nil
}

// salvageTiers adds the catalog entries that failed to decode, with the
// fields that did decode, so that Validate still checks their other fields
// and tiers.default. mapstructure drops a map entry when any of its fields
// fails.
func salvageTiers(cfg *Config, ko *koanf.Koanf) {
	catalog, _ := ko.Get("tiers.catalog").(map[string]any)
	for id, value := range catalog {
		if _, ok := cfg.Tiers.Catalog[id]; ok {
			continue
		}
		var tier Tier
		// The errors were reported by the full decode.
		_ = decodeProblems("", value, &tier)
		if cfg.Tiers.Catalog == nil {
			cfg.Tiers.Catalog = map[string]Tier{}
		}
		cfg.Tiers.Catalog[id] = tier
	}
}

// withoutKeysOf drops the problems whose key is, contains or is inside a
// key of failed. A value that failed to decode is left at zero, and
// Validate would report that zero a second time.
func withoutKeysOf(problems, failed problemList) problemList {
	var unrelated problemList
	for _, p := range problems {
		related := false
		for _, f := range failed {
			if isWithin(p.Key, f.Key) || isWithin(f.Key, p.Key) {
				related = true
				break
			}
		}
		if !related {
			unrelated = append(unrelated, p)
		}
	}
	return unrelated
}

// isWithin reports whether key is parent or a key below parent.
func isWithin(key, parent string) bool {
	if parent == "" || key == parent {
		return true
	}
	return strings.HasPrefix(key, parent+".") || strings.HasPrefix(key, parent+"[")
}

// sourceOf returns the environment variable that set key or one of its
// parents, or "".
func sourceOf(key string, envSources map[string]string) string {
	for key != "" {
		if name, ok := envSources[key]; ok {
			return name
		}
		cut := strings.LastIndexAny(key, ".[")
		if cut < 0 {
			return ""
		}
		key = key[:cut]
	}
	return ""
}
