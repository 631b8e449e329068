package edge

import (
	"net/http"
	"testing"
)

type profileInput struct {
	Name string `json:"name"`
	User struct {
		Age  int      `json:"age"`
		Tags []string `json:"tags"`
	} `json:"user"`
}

func decodeRoute() Route {
	return Route{Method: "POST", Path: "/v1/profile", Handler: func(req *Request) error {
		var in profileInput
		if err := req.Decode(&in); err != nil {
			return err
		}
		return req.JSON(http.StatusCreated, in)
	}}
}

func TestDecodeRejects(t *testing.T) {
	cases := []struct {
		name        string
		body        string
		contentType string
		field       string
		offset      float64 // -1 when details carry no offset
	}{
		{"Malformed", `{"name": "a",}`, "application/json", "body", 14},
		{"Truncated", `{"name": "a"`, "application/json", "body", 12},
		{"WrongType", `{"user": {"age": "old"}}`, "application/json", "user.age", 22},
		{"WrongTypeInArray", `{"user": {"tags": [1]}}`, "application/json", "user.tags", -2},
		{"UnknownField", `{"name": "a", "admin": true}`, "application/json", "admin", -1},
		{"TrailingData", `{"name": "a"} {"name": "b"}`, "application/json", "body", 14},
		{"TrailingGarbage", `{"name": "a"}]`, "application/json", "body", 13},
		{"Empty", ``, "application/json", "body", -1},
		{"OnlySpaces", `   `, "application/json", "body", -1},
		{"MissingContentType", `{"name": "a"}`, "", "Content-Type", -1},
		{"FormContentType", `{"name": "a"}`, "application/x-www-form-urlencoded", "Content-Type", -1},
		{"Latin1Charset", `{"name": "a"}`, "application/json; charset=latin1", "Content-Type", -1},
	}
	h := newHarness(t, nil).start(decodeRoute())

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp response
			if tc.contentType == "" {
				resp = h.do("POST", "/v1/profile", tc.body)
			} else {
				resp = h.do("POST", "/v1/profile", tc.body, "Content-Type", tc.contentType)
			}

			if resp.status != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", resp.status)
			}
			apiErr := resp.apiError(t)
			if apiErr.Code != CodeValidation {
				t.Errorf("code = %q, want %q", apiErr.Code, CodeValidation)
			}
			if apiErr.Details["field"] != tc.field {
				t.Errorf("details.field = %v, want %q (message %q)", apiErr.Details["field"], tc.field, apiErr.Message)
			}
			offset, hasOffset := apiErr.Details["offset"]
			switch {
			case tc.offset == -1 && hasOffset:
				t.Errorf("details.offset = %v, want none", offset)
			case tc.offset >= 0 && offset != tc.offset:
				t.Errorf("details.offset = %v, want %v", offset, tc.offset)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
	}{
		{"Plain", "application/json"},
		{"Charset", "application/json; charset=utf-8"},
		{"CharsetUpper", "application/json; charset=UTF-8"},
	}
	h := newHarness(t, nil).start(decodeRoute())

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := h.do("POST", "/v1/profile", `{"name":"a","user":{"age":3,"tags":["x"]}}`+"\n", "Content-Type", tc.contentType)

			if resp.status != http.StatusCreated {
				t.Errorf("status = %d, want 201 (body %s)", resp.status, resp.body)
			}
			if got := string(resp.body); got != `{"data":{"name":"a","user":{"age":3,"tags":["x"]}}}` {
				t.Errorf("body = %s", got)
			}
		})
	}
}

func TestDecodeNonPointerIs500(t *testing.T) {
	h := newHarness(t, nil).start(Route{Method: "POST", Path: "/v1/bad", Handler: func(req *Request) error {
		var in profileInput
		return req.Decode(in)
	}})

	resp := h.do("POST", "/v1/bad", `{}`, "Content-Type", "application/json")

	if resp.status != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", resp.status)
	}
}
