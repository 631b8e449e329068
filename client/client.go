// Package client is a Go client for the Nexus API that follows the
// spec's retry strategy:
//
//   - 5xx and network errors: exponential backoff with full jitter, at most
//     MaxRetries (3) retries. Only requests that are safe to repeat are
//     retried: GET, HEAD, PUT, DELETE, POSTs that the server treats as
//     idempotent (such as a skill publish), and requests that carry an
//     Idempotency-Key, which every sync mutation does;
//   - 401: one token refresh and one retry; callers that hit 401 together
//     share one refresh, and a failed refresh returns ErrSignInRequired;
//   - 429: wait for Retry-After, then retry, within the same MaxRetries.
//
// Waiting stops at once when the request's context ends. Errors are
// *Error values carrying the spec's code and details.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nexus-suite/nexus/runtime/clock"
)

// Defaults of Options.
const (
	DefaultMaxRetries = 3
	DefaultBaseDelay  = 200 * time.Millisecond
	DefaultMaxDelay   = 10 * time.Second
	// maxRetryAfter caps a server's Retry-After, so a wrong header cannot
	// stall a client for hours.
	maxRetryAfter = 5 * time.Minute
	// maxResponseBytes bounds a JSON response body that is read into memory.
	maxResponseBytes = 64 << 20
)

// errResponseTooLarge is returned for a response body over
// maxResponseBytes; sending the request again would not help.
var errResponseTooLarge = fmt.Errorf("the response is larger than %d bytes", maxResponseBytes)

// Tokens are the credentials of a session.
type Tokens struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// Options configure a Client. BaseURL is required.
type Options struct {
	// BaseURL is the server's address, such as https://api.nexus-suite.dev.
	BaseURL    string
	HTTPClient *http.Client
	// Tokens are the session's credentials; empty for anonymous use.
	Tokens Tokens
	// OnRefresh is called with new tokens after each refresh, for example
	// to save them; an error it returns is passed to the caller.
	OnRefresh func(Tokens) error
	// Clock times the waits between attempts; tests pass a fake one.
	Clock      clock.Clock
	MaxRetries int
	BaseDelay  time.Duration
	MaxDelay   time.Duration
	UserAgent  string
	// Jitter returns a random number in [0, 1); the default is math/rand.
	Jitter func() float64
}

// Client calls the Nexus API. It is safe for concurrent use.
type Client struct {
	opts Options

	mu     sync.Mutex
	tokens Tokens
	// refreshing is the refresh in flight, shared by every caller that hit
	// 401 while it runs.
	refreshing *refreshCall
}

type refreshCall struct {
	done   chan struct{}
	tokens Tokens
	err    error
}

// New returns a client.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		return nil, errors.New("client: BaseURL is required")
	}
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 2 * time.Minute}
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = DefaultMaxRetries
	}
	if opts.BaseDelay == 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "nexus-go-client"
	}
	return &Client{opts: opts, tokens: opts.Tokens}, nil
}

// Tokens returns the current credentials.
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// SetTokens replaces the credentials, after a sign-in.
func (c *Client) SetTokens(tokens Tokens) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = tokens
}

// Request is one API call.
type Request struct {
	Method string
	// Path is the path and query, such as /v1/sync/info.
	Path string
	// Body is encoded as JSON unless RawBody is set.
	Body        any
	RawBody     []byte
	ContentType string
	Header      http.Header
	// IdempotencyKey makes a POST or PATCH safe to retry.
	IdempotencyKey string
	// Accept replaces the default Accept header, application/json, for
	// routes that return other content, such as an archive.
	Accept string
	// UploadProgress, when set, is called as the body is sent with the
	// bytes sent so far and the body's size. A retry starts again from 0.
	UploadProgress func(sent, total int64)
	// Anonymous requests carry no bearer token and never refresh.
	Anonymous bool
	// safeToRepeat marks a POST that the server treats as idempotent.
	safeToRepeat bool
}

// Response is a successful call's status, headers and body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Decode reads the "data" member of the envelope into dst.
func (r *Response) Decode(dst any) error {
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &envelope); err != nil {
		return fmt.Errorf("decode response envelope: %w", err)
	}
	if dst == nil {
		return nil
	}
	if err := json.Unmarshal(envelope.Data, dst); err != nil {
		return fmt.Errorf("decode response data: %w", err)
	}
	return nil
}

// Call sends the request with the retry strategy and decodes the data of
// a 2xx response into out, when out is not nil.
func (c *Client) Call(ctx context.Context, req Request, out any) error {
	res, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return res.Decode(out)
}

// Do sends the request with the retry strategy and returns a 2xx or 3xx
// response, or an error: *Error for an API error, ErrSignInRequired
// (wrapped) when the session cannot be renewed, or the context's error.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	body, err := encodeBody(req)
	if err != nil {
		return nil, err
	}

	refreshed := false
	for attempt := 0; ; attempt++ {
		accessToken := ""
		if !req.Anonymous {
			accessToken = c.Tokens().AccessToken
		}
		res, err := c.send(ctx, req, body, accessToken)
		if err == nil && res.Status < 400 {
			return res, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}

		var apiErr *Error
		switch {
		case err != nil:
			// A network error: the request may or may not have arrived.
			if !repeatable(req) || attempt >= c.opts.MaxRetries || errors.Is(err, errResponseTooLarge) {
				return nil, err
			}
			if err := c.wait(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
		case res.Status == http.StatusUnauthorized && !req.Anonymous && !refreshed:
			refreshed = true
			if err := c.refresh(ctx, accessToken); err != nil {
				return nil, err
			}
			attempt-- // the retry after a refresh is not one of MaxRetries
		case res.Status == http.StatusTooManyRequests && attempt < c.opts.MaxRetries:
			apiErr = decodeError(res)
			delay := apiErr.RetryAfter
			if delay <= 0 {
				delay = c.backoff(attempt)
			}
			if err := c.wait(ctx, delay); err != nil {
				return nil, err
			}
		case res.Status >= 500 && repeatable(req) && attempt < c.opts.MaxRetries:
			if err := c.wait(ctx, c.backoff(attempt)); err != nil {
				return nil, err
			}
		default:
			apiErr = decodeError(res)
			if res.Status == http.StatusUnauthorized && refreshed {
				return nil, fmt.Errorf("%w: %v", ErrSignInRequired, apiErr)
			}
			return nil, apiErr
		}
	}
}

// repeatable reports whether sending the request twice does no harm:
// its method is idempotent, or it carries an Idempotency-Key.
func repeatable(req Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.IdempotencyKey != "" || req.safeToRepeat
}

// backoff is the full-jitter wait before retry number attempt+1: a random
// time between zero and BaseDelay·2^attempt, capped at MaxDelay.
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.opts.BaseDelay << attempt
	if ceiling > c.opts.MaxDelay || ceiling <= 0 {
		ceiling = c.opts.MaxDelay
	}
	return time.Duration(c.opts.Jitter() * float64(ceiling))
}

// wait sleeps on the client's clock and returns early with the context's
// error when it ends.
func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	done := make(chan struct{})
	timer := c.opts.Clock.AfterFunc(d, func() { close(done) })
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func encodeBody(req Request) ([]byte, error) {
	if req.RawBody != nil {
		return req.RawBody, nil
	}
	if req.Body == nil {
		return nil, nil
	}
	body, err := json.Marshal(req.Body)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s body: %w", req.Method, req.Path, err)
	}
	return body, nil
}

func (c *Client) send(ctx context.Context, req Request, body []byte, accessToken string) (*Response, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
		if req.UploadProgress != nil {
			reader = &progressReader{reader: reader, total: int64(len(body)), report: req.UploadProgress}
		}
	}
	httpReq, err := http.NewRequestWithContext(ctx, req.Method, c.opts.BaseURL+req.Path, reader)
	if err != nil {
		return nil, fmt.Errorf("build %s %s: %w", req.Method, req.Path, err)
	}
	if body != nil {
		// The progress wrapper hides the reader's type from net/http, which
		// would then send the body chunked; the length is known.
		httpReq.ContentLength = int64(len(body))
	}
	for name, values := range req.Header {
		httpReq.Header[name] = values
	}
	if body != nil {
		contentType := req.ContentType
		if contentType == "" {
			contentType = "application/json"
		}
		httpReq.Header.Set("Content-Type", contentType)
	}
	if req.Accept != "" {
		httpReq.Header.Set("Accept", req.Accept)
	} else {
		httpReq.Header.Set("Accept", "application/json")
	}
	httpReq.Header.Set("User-Agent", c.opts.UserAgent)
	if req.IdempotencyKey != "" {
		httpReq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}
	if accessToken != "" {
		httpReq.Header.Set("Authorization", "Bearer "+accessToken)
	}

	httpRes, err := c.opts.HTTPClient.Do(httpReq)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.Path, err)
	}
	defer httpRes.Body.Close()
	data, err := io.ReadAll(io.LimitReader(httpRes.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", req.Method, req.Path, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("read %s %s: %w", req.Method, req.Path, errResponseTooLarge)
	}
	return &Response{Status: httpRes.StatusCode, Header: httpRes.Header, Body: data}, nil
}

// decodeError reads the error envelope of a response.
func decodeError(res *Response) *Error {
	apiErr := &Error{Status: res.Status, RequestID: res.Header.Get("X-Request-Id")}
	var envelope struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(res.Body, &envelope); err == nil && envelope.Error.Code != "" {
		apiErr.Code, apiErr.Message, apiErr.Details = envelope.Error.Code, envelope.Error.Message, envelope.Error.Details
	} else {
		apiErr.Code = codeOfStatus(res.Status)
		apiErr.Message = http.StatusText(res.Status)
	}
	if seconds, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && seconds > 0 {
		apiErr.RetryAfter = min(time.Duration(seconds)*time.Second, maxRetryAfter)
	}
	return apiErr
}

// progressReader reports the bytes read from reader to report.
type progressReader struct {
	reader io.Reader
	sent   int64
	total  int64
	report func(sent, total int64)
}

func (p *progressReader) Read(buf []byte) (int, error) {
	n, err := p.reader.Read(buf)
	if n > 0 {
		p.sent += int64(n)
		p.report(p.sent, p.total)
	}
	return n, err
}
