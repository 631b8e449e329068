package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Problem is one invalid option found while loading or validating.
type Problem struct {
	// Key is the option's full key path, such as "server.listen", or the
	// name of an environment variable that matches no option.
	Key string
	// Message describes what is wrong with the value.
	Message string
	// Source is the environment variable that set the value, or "" when the
	// value came from a file or the defaults.
	Source string
}

// String formats the problem as one line that starts with the key.
func (p Problem) String() string {
	if p.Source == "" {
		return p.Key + ": " + p.Message
	}
	return p.Key + ": " + p.Message + " (set by " + p.Source + ")"
}

// Error reports every problem of a configuration together. Its message has
// a header line, then one line per problem, each starting with the key.
type Error struct {
	// File is the config file that was loaded, or "" when there was none.
	File string
	// Problems are sorted by key.
	Problems []Problem
}

// Error returns the header and one line per problem.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration")
	if e.File != "" {
		b.WriteString(" in " + e.File)
	}
	b.WriteString(":")
	for _, p := range e.Problems {
		b.WriteString("\n" + p.String())
	}
	return b.String()
}

// problemList collects the problems of one load or validation.
type problemList []Problem

func (l *problemList) add(key, format string, args ...any) {
	*l = append(*l, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// err returns the problems sorted by key as an *Error, or nil when there
// are none.
func (l problemList) err(file string) error {
	if len(l) == 0 {
		return nil
	}
	sorted := append([]Problem(nil), l...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	return &Error{File: file, Problems: sorted}
}

// DecodeSection decodes section into dst, which must be a pointer to a
// struct with koanf tags, with the same strict rules as the whole config:
// an unknown key, a value of the wrong type and a malformed duration are
// errors. The returned error is an *Error whose problems name the key as
// "<prefix>.<key>", such as "modules.sync.max_bytes". Modules call it from
// their Decode method with prefix "modules.<name>".
func DecodeSection(prefix string, section map[string]any, dst any) error {
	return decodeProblems(prefix, section, dst).err("")
}

// DecodeModule decodes the section of module name over defaults, strictly
// as DecodeSection does, and then checks the result with validate. It is
// the usual body of a module's Decode method.
func DecodeModule[T any](name string, section map[string]any, defaults T, validate func(T) error) (T, error) {
	opts := defaults
	if err := DecodeSection("modules."+name, section, &opts); err != nil {
		return defaults, err
	}
	if err := validate(opts); err != nil {
		return defaults, err
	}
	return opts, nil
}

// decodeProblems decodes input into dst strictly and returns the problems,
// each key prefixed with prefix.
func decodeProblems(prefix string, input any, dst any) problemList {
	decoder, err := mapstructure.NewDecoder(decoderConfig(dst))
	if err != nil {
		// NewDecoder fails when dst is not a pointer, which is a programming error.
		return problemList{{Key: prefix, Message: "decode: " + err.Error()}}
	}
	if input == nil {
		input = map[string]any{}
	}
	// mapstructure names the root by its Go type when it reports unknown
	// top-level keys.
	rootName := reflect.TypeOf(dst).Elem().String()
	return decodeErrorProblems(prefix, rootName, decoder.Decode(input))
}

// decoderConfig returns the strict mapstructure settings shared by Load and
// DecodeSection.
func decoderConfig(dst any) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{
		DecodeHook:       strictTypesHook,
		ErrorUnused:      true,
		WeaklyTypedInput: false,
		TagName:          "koanf",
		Result:           dst,
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

// strictTypesHook runs before mapstructure decodes each value. It parses
// duration strings and rejects every value whose YAML type does not match
// the option, with a message in the option's terms. Without it mapstructure
// would accept 30 as 30ns for a duration and truncate 1.5 to 1 for an int.
func strictTypesHook(from, to reflect.Value) (any, error) {
	value := from.Interface()

	if to.Type() == durationType {
		switch v := value.(type) {
		case string:
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("expected a duration such as \"30s\" or \"15m\", got %q", v)
			}
			return d, nil
		case time.Duration:
			return v, nil
		case int:
			// A bare 0 is unambiguous. Other numbers lack a unit.
			if v == 0 {
				return time.Duration(0), nil
			}
		}
		return nil, fmt.Errorf("expected a duration with a unit, such as \"30s\", got %s", describe(value))
	}

	switch to.Kind() {
	case reflect.String:
		if from.Kind() != reflect.String {
			return nil, fmt.Errorf("expected a string, got %s", describe(value))
		}
	case reflect.Bool:
		if from.Kind() != reflect.Bool {
			return nil, fmt.Errorf("expected true or false, got %s", describe(value))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return integerValue(from, value)
	case reflect.Slice, reflect.Array:
		if from.Kind() != reflect.Slice && from.Kind() != reflect.Array {
			return nil, fmt.Errorf("expected a list, got %s", describe(value))
		}
	case reflect.Map, reflect.Struct:
		if from.Kind() != reflect.Map && from.Type() != to.Type() {
			return nil, fmt.Errorf("expected a mapping of keys to values, got %s", describe(value))
		}
	}
	return value, nil
}

// integerValue accepts integers and floats without a fraction, such as the
// 1e6 that YAML reads as a float.
func integerValue(from reflect.Value, value any) (any, error) {
	switch from.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return value, nil
	case reflect.Float32, reflect.Float64:
		f := from.Float()
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), nil
		}
	}
	return nil, fmt.Errorf("expected an integer, got %s", describe(value))
}

// describe formats a value for an error message: strings quoted, lists and
// mappings by kind only, because they can be long.
func describe(value any) string {
	switch v := value.(type) {
	case nil:
		return "an empty value"
	case string:
		return fmt.Sprintf("%q", v)
	}
	switch reflect.ValueOf(value).Kind() {
	case reflect.Map:
		return "a mapping"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return fmt.Sprintf("%v", value)
}

// mapIndex matches a map key in a mapstructure field name, such as the
// "[pro]" of "tiers.catalog[pro].rank". Slice indexes ("[0]") are digits
// and stay as they are.
var mapIndex = regexp.MustCompile(`\[([^\]]*[^\]0-9][^\]]*)\]`)

// keyPath turns a mapstructure field name into the config's dotted key.
func keyPath(prefix, name string) string {
	name = mapIndex.ReplaceAllString(name, ".$1")
	name = strings.TrimPrefix(name, ".")
	switch {
	case prefix == "":
		return name
	case name == "":
		return prefix
	case strings.HasPrefix(name, "["):
		return prefix + name
	}
	return prefix + "." + name
}

const invalidKeysPrefix = "has invalid keys: "

// decodeErrorProblems rewrites the tree of errors that mapstructure returns
// (errors.Join of *mapstructure.DecodeError values, whose messages read
// "'tiers.catalog[pro].rank' expected type 'int', ...") into problems keyed
// by the full dotted path.
func decodeErrorProblems(prefix, rootName string, err error) problemList {
	if err == nil {
		return nil
	}

	var decodeErr *mapstructure.DecodeError
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		decodeErr = e
	case interface{ Unwrap() []error }:
		var list problemList
		for _, inner := range e.Unwrap() {
			list = append(list, decodeErrorProblems(prefix, rootName, inner)...)
		}
		return list
	case interface{ Unwrap() error }:
		// Decoder.Decode wraps the joined errors in one fmt.Errorf.
		if inner := e.Unwrap(); inner != nil {
			return decodeErrorProblems(prefix, rootName, inner)
		}
		return problemList{{Key: prefix, Message: err.Error()}}
	default:
		return problemList{{Key: prefix, Message: err.Error()}}
	}

	name := decodeErr.Name()
	if name == rootName {
		name = ""
	}
	key := keyPath(prefix, name)
	cause := decodeErr.Unwrap()
	var nested *mapstructure.DecodeError
	if errors.As(cause, &nested) {
		return decodeErrorProblems(prefix, rootName, cause)
	}

	message := cause.Error()
	if unknown, ok := strings.CutPrefix(message, invalidKeysPrefix); ok {
		var list problemList
		for _, name := range strings.Split(unknown, ", ") {
			list.add(keyPath(key, name), "unknown option")
		}
		return list
	}
	return problemList{{Key: key, Message: message}}
}
