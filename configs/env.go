package configs

import (
	"reflect"
	"sort"
	"strings"

	"github.com/knadh/koanf/v2"
	"gopkg.in/yaml.v3"
)

// envPrefix starts the name of every variable that sets an option.
const envPrefix = "NEXUS_"

// envKey is one option that an environment variable can set.
type envKey struct {
	path string
	// typ is the option's Go type, or nil for module options, whose types
	// the module itself defines.
	typ reflect.Type
}

// envIndex resolves variable names to key paths. Keys contain underscores
// (NEXUS_TOKENS_ACCESS_TTL is tokens.access_ttl, not tokens.access.ttl), so
// a name is matched against the known key paths instead of being split.
type envIndex struct {
	// keys maps a variable name, such as NEXUS_SERVER_LISTEN, to its option.
	keys map[string]envKey
	// openSections are the key paths of module sections, such as
	// modules.auth, under which a module may read keys that the merged
	// config does not contain.
	openSections []string
	// sections maps the variable prefix of each top-level section, such as
	// NEXUS_SERVER_, to the section's key. A variable under one of them must
	// match an option.
	sections map[string]string
}

// envName returns the variable that sets path: NEXUS_ followed by the path
// in upper case with dots replaced by underscores.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// newEnvIndex lists the options of the Config struct, expanding its maps
// (tier catalog, modules) with the keys present in merged.
func newEnvIndex(merged map[string]any) *envIndex {
	index := &envIndex{keys: map[string]envKey{}, sections: map[string]string{}}
	configType := reflect.TypeOf(Config{})
	for i := range configType.NumField() {
		field := configType.Field(i)
		tag := field.Tag.Get("koanf")
		kind := field.Type.Kind()
		if kind == reflect.Struct || kind == reflect.Map {
			index.sections[envName(tag)+"_"] = tag
		}
		index.addType(tag, field.Type, merged[tag])
	}

	// Longest first, so that a module named "a_b" wins over a module "a".
	sort.Slice(index.openSections, func(i, j int) bool {
		return len(index.openSections[i]) > len(index.openSections[j])
	})
	return index
}

// addType adds the options of a value of type typ at path, whose merged
// value is value.
func (x *envIndex) addType(path string, typ reflect.Type, value any) {
	switch typ.Kind() {
	case reflect.Struct:
		values, _ := value.(map[string]any)
		for i := range typ.NumField() {
			field := typ.Field(i)
			tag := field.Tag.Get("koanf")
			if tag == "" || tag == "-" {
				continue
			}
			x.addType(path+"."+tag, field.Type, values[tag])
		}

	case reflect.Map:
		values, _ := value.(map[string]any)
		if typ.Elem().Kind() == reflect.Interface {
			// A module section: its keys and their types belong to the module.
			x.openSections = append(x.openSections, path)
			x.addUntyped(path, values)
			return
		}
		for name, v := range values {
			x.addType(path+"."+name, typ.Elem(), v)
		}

	default:
		x.keys[envName(path)] = envKey{path: path, typ: typ}
	}
}

// addUntyped adds the leaf keys of a module section's merged values. An
// empty mapping, such as a list of providers with none configured, is a
// leaf, so one variable can set it as a whole in YAML.
func (x *envIndex) addUntyped(path string, values map[string]any) {
	for name, v := range values {
		if nested, ok := v.(map[string]any); ok && len(nested) > 0 {
			x.addUntyped(path+"."+name, nested)
			continue
		}
		x.keys[envName(path+"."+name)] = envKey{path: path + "." + name}
	}
}

// resolve returns the option that the variable name sets, with found
// false when it sets none. For such a name, section is the top-level
// section whose prefix it starts with, or "". A name under a section is a
// mistake, while other names may be meant for something else.
func (x *envIndex) resolve(name string) (key envKey, found bool, section string) {
	upper := strings.ToUpper(name)
	if key, ok := x.keys[upper]; ok {
		return key, true, ""
	}

	for _, open := range x.openSections {
		rest, ok := strings.CutPrefix(upper, envName(open)+"_")
		if ok && rest != "" {
			return envKey{path: open + "." + strings.ToLower(rest)}, true, ""
		}
	}

	for prefix, section := range x.sections {
		if strings.HasPrefix(upper, prefix) {
			return envKey{}, false, section
		}
	}
	return envKey{}, false, ""
}

// applyEnv sets the options named by the NEXUS_* variables of environ on
// ko. It returns the variable that set each key path and the problems:
// variables under a section that match no option, and values that are not
// valid YAML. Other NEXUS_* variables, such as NEXUS_TEST_SERVICES, are
// ignored.
func applyEnv(ko *koanf.Koanf, environ []string) (map[string]string, problemList) {
	index := newEnvIndex(ko.Raw())
	sources := map[string]string{}
	var problems problemList

	for _, entry := range environ {
		name, raw, ok := strings.Cut(entry, "=")
		if !ok || !strings.HasPrefix(strings.ToUpper(name), envPrefix) {
			continue
		}

		key, found, section := index.resolve(name)
		if !found {
			if section != "" {
				problems.add(name, "unknown option: no option of section %s has this variable name", section)
			}
			continue
		}

		value, err := envValue(raw, key.typ)
		if err != nil {
			problems = append(problems, Problem{Key: key.path, Message: err.Error(), Source: name})
			continue
		}
		if err := ko.Set(key.path, value); err != nil {
			problems = append(problems, Problem{Key: key.path, Message: "set: " + err.Error(), Source: name})
			continue
		}
		sources[key.path] = name
	}
	return sources, problems
}

// envValue converts a variable's text into the value that decoding
// expects. A string option takes the text as it is, so that "123" or "no"
// stays a string. A list option takes a YAML flow list ("[a, b]") or
// comma-separated items ("a, b"). Any other text is parsed as a YAML scalar,
// so "false" becomes a bool and "20" an int, and strict decoding then
// checks it against the option's type.
func envValue(raw string, typ reflect.Type) (any, error) {
	trimmed := strings.TrimSpace(raw)
	if typ != nil && typ.Kind() == reflect.String {
		return raw, nil
	}
	if typ != nil && typ.Kind() == reflect.Slice && !strings.HasPrefix(trimmed, "[") {
		items := []any{}
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	}
	if trimmed == "" {
		return raw, nil
	}

	var value any
	if err := yaml.Unmarshal([]byte(raw), &value); err != nil {
		return nil, &yamlValueError{err: err}
	}
	if value == nil {
		// "~", "null" or a comment: keep the text, so that the option's
		// type check reports it.
		return raw, nil
	}
	return value, nil
}

// yamlValueError is a variable value that is not valid YAML.
type yamlValueError struct{ err error }

func (e *yamlValueError) Error() string {
	return "invalid YAML value: " + strings.TrimPrefix(e.err.Error(), "yaml: ")
}
