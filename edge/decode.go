package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode reads the request body as one JSON value into dst, strictly:
//   - an empty body, a Content-Type other than application/json (an
//     optional charset must be utf-8), malformed JSON or data after the
//     value is a 400 VALIDATION_ERROR with details {"field": "body"}, plus
//     "offset" (bytes into the body) for JSON errors;
//   - a value of the wrong type is a 400 with details.field set to the
//     field's JSON path, such as "user.age";
//   - an unknown field is a 400 with details.field set to the field's name.
//
// Any other error, such as a dst that is not a pointer, is returned as is
// and becomes a 500.
func (r *Request) Decode(dst any) error {
	body := r.Ctx.Request.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return Validation("body", "request body is empty, expected a JSON value")
	}
	if err := checkJSONContentType(r.Ctx.Request.Header.ContentType()); err != nil {
		return err
	}
	// encoding/json would quietly replace invalid bytes with U+FFFD.
	if !utf8.Valid(body) {
		return Validation("body", "request body is not valid UTF-8")
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, len(body))
	}

	end := dec.InputOffset()
	rest := bytes.TrimLeft(body[end:], " \t\r\n")
	if len(rest) > 0 {
		return &Error{
			Status:  StatusOf(CodeValidation),
			Code:    CodeValidation,
			Message: "request body has data after the JSON value",
			Details: map[string]any{"field": "body", "offset": len(body) - len(rest)},
		}
	}
	return nil
}

// checkJSONContentType rejects a body that is not declared as JSON, so a
// form or a text body is never parsed by accident.
func checkJSONContentType(header []byte) error {
	if len(header) == 0 {
		return Validation("Content-Type", "Content-Type header is missing, expected application/json")
	}

	mediaType, params, err := mime.ParseMediaType(string(header))
	if err != nil || mediaType != "application/json" {
		return Validation("Content-Type",
			fmt.Sprintf("Content-Type %q is not supported, expected application/json", header))
	}
	if charset, ok := params["charset"]; ok && !strings.EqualFold(charset, "utf-8") {
		return Validation("Content-Type",
			fmt.Sprintf("charset %q is not supported, expected utf-8", charset))
	}
	return nil
}

// decodeError turns an error of json.Decoder.Decode into the 400 a client
// can act on, or returns it unchanged when the fault is the handler's.
func decodeError(err error, bodyLen int) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError

	switch {
	case errors.As(err, &syntaxErr):
		return &Error{
			Status:  StatusOf(CodeValidation),
			Code:    CodeValidation,
			Message: "request body is not valid JSON: " + syntaxErr.Error(),
			Details: map[string]any{"field": "body", "offset": syntaxErr.Offset},
		}

	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{
			Status:  StatusOf(CodeValidation),
			Code:    CodeValidation,
			Message: "request body ends in the middle of a JSON value",
			Details: map[string]any{"field": "body", "offset": bodyLen},
		}

	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return &Error{
			Status:  StatusOf(CodeValidation),
			Code:    CodeValidation,
			Message: fmt.Sprintf("field %s must be a JSON %s, got %s", field, jsonKind(typeErr.Type), typeErr.Value),
			Details: map[string]any{"field": field, "offset": typeErr.Offset},
		}
	}

	// encoding/json has no error type for an unknown field, only this
	// message: `json: unknown field "name"` (Go 1.10 through at least 1.26).
	const unknownFieldPrefix = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknownFieldPrefix) {
		name, unquoteErr := strconv.Unquote(strings.TrimPrefix(msg, unknownFieldPrefix))
		if unquoteErr != nil {
			name = strings.TrimPrefix(msg, unknownFieldPrefix)
		}
		return Validation(name, fmt.Sprintf("field %s is not allowed", name))
	}

	// A destination that is not a pointer is the handler's mistake.
	var invalidErr *json.InvalidUnmarshalError
	if errors.As(err, &invalidErr) {
		return fmt.Errorf("decode request body: %w", err)
	}

	// What is left comes from a field's own UnmarshalJSON, such as a
	// time.Time given "tomorrow": the input is at fault, but the error does
	// not name the field.
	return &Error{
		Status:  StatusOf(CodeValidation),
		Code:    CodeValidation,
		Message: "request body has an invalid value: " + err.Error(),
		Details: map[string]any{"field": "body"},
	}
}

// jsonKind names the JSON type that decodes into t, for error messages.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	default:
		return t.String()
	}
}
