package openapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Names of the responses under components.responses that describe requests
// matching no operation of the document.
const (
	responseRouteNotFound    = "RouteNotFound"
	responseMethodNotAllowed = "MethodNotAllowed"
	responseBodyTooLarge     = "BodyTooLarge"
)

// probeMethods are the methods tried on a path to tell a 405 from a 404.
var probeMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// Validator checks HTTP responses against the document. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	// routeNotFound and methodNotAllowed are the operations that a request
	// matching no operation is checked against.
	routeNotFound    *openapi3.Operation
	methodNotAllowed *openapi3.Operation
}

// NewValidator loads and validates the document and builds a router over
// its paths. The router ignores the document's servers, so responses of a
// server on any address can be checked.
func NewValidator() (*Validator, error) {
	doc, err := Load()
	if err != nil {
		return nil, err
	}
	doc.Servers = nil

	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build router over openapi.yaml: %w", err)
	}

	routeNotFound, err := unmatchedOperation(doc, http.StatusNotFound, responseRouteNotFound)
	if err != nil {
		return nil, err
	}
	methodNotAllowed, err := unmatchedOperation(doc, http.StatusMethodNotAllowed, responseMethodNotAllowed)
	if err != nil {
		return nil, err
	}
	return &Validator{doc: doc, router: router, routeNotFound: routeNotFound, methodNotAllowed: methodNotAllowed}, nil
}

// unmatchedOperation builds an operation with the response name under
// status, and the 413 that the server sends before routing when a body is
// over the limit.
func unmatchedOperation(doc *openapi3.T, status int, name string) (*openapi3.Operation, error) {
	operation := openapi3.NewOperation()
	operation.Responses = openapi3.NewResponses()
	for code, responseName := range map[int]string{status: name, http.StatusRequestEntityTooLarge: responseBodyTooLarge} {
		response := doc.Components.Responses[responseName]
		if response == nil {
			return nil, fmt.Errorf("openapi.yaml has no components.responses.%s", responseName)
		}
		operation.Responses.Set(strconv.Itoa(code), response)
	}
	return operation, nil
}

// Check validates one response against the operation that method and
// requestURI select. The status must be listed for the operation. Every
// header that the document requires for that status must be present and
// match its schema, and the Content-Type and body must match the response's
// content. requestURI is the request's path with an optional query, such as
// /v1/entitlements/check?feature=sync.
//
// A request that matches no operation is checked against
// components.responses.RouteNotFound (404), or MethodNotAllowed (405) when
// the path exists for other methods, and against BodyTooLarge (413). Check
// returns nil for a HEAD request, because kin-openapi skips those.
func (v *Validator) Check(method, requestURI string, status int, header http.Header, body []byte) error {
	target, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return fmt.Errorf("parse request URI %q: %w", requestURI, err)
	}
	request := &http.Request{Method: method, URL: target, Header: http.Header{}}

	route, pathParams, described, err := v.findRoute(request)
	if err != nil {
		return err
	}

	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    request,
			PathParams: pathParams,
			Route:      route,
		},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(bytes.Clone(body))
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return fmt.Errorf("%s %s: response %d does not match %s: %w",
			method, requestURI, status, described, err)
	}
	return nil
}

// findRoute returns the operation of request, or a stand-in operation for
// a path or method that the document does not list, with a description of
// it for error messages.
func (v *Validator) findRoute(request *http.Request) (route *routers.Route, pathParams map[string]string, described string, err error) {
	route, pathParams, err = v.router.FindRoute(request)
	if err == nil {
		return route, pathParams, "operation " + route.Operation.OperationID, nil
	}
	var routeErr *routers.RouteError
	if !errors.As(err, &routeErr) {
		return nil, nil, "", fmt.Errorf("find operation of %s %s: %w", request.Method, request.URL.Path, err)
	}

	operation, name := v.routeNotFound, responseRouteNotFound
	if v.pathHasOtherMethods(request) {
		operation, name = v.methodNotAllowed, responseMethodNotAllowed
	}
	route = &routers.Route{Spec: v.doc, Path: request.URL.Path, Method: request.Method, Operation: operation}
	return route, nil, "no operation, so components.responses." + name + " or " + responseBodyTooLarge, nil
}

// pathHasOtherMethods reports whether the path of request matches an
// operation under some other method. The legacy router reports "method
// not allowed" only for paths without parameters, so every method is tried.
func (v *Validator) pathHasOtherMethods(request *http.Request) bool {
	for _, method := range probeMethods {
		if method == request.Method {
			continue
		}
		probe := &http.Request{Method: method, URL: request.URL, Header: request.Header}
		if _, _, err := v.router.FindRoute(probe); err == nil {
			return true
		}
	}
	return false
}
