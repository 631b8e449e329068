package edge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/nexus-suite/nexus/runtime/gcra"
)

// Header names, spelled as fasthttp normalizes them.
const (
	headerRequestID       = "X-Request-Id"
	headerAuthorization   = "Authorization"
	headerWWWAuthenticate = "WWW-Authenticate"
	headerRetryAfter      = "Retry-After"
	headerForwardedFor    = "X-Forwarded-For"
)

// Rate-limit header names, pre-built in canonical form for
// ResponseHeader.SetCanonical, which skips normalizing the key.
var (
	headerRateLimitPolicy     = []byte("RateLimit-Policy")
	headerRateLimit           = []byte("RateLimit")
	headerXRateLimitLimit     = []byte("X-RateLimit-Limit")
	headerXRateLimitRemaining = []byte("X-RateLimit-Remaining")
	headerXRateLimitReset     = []byte("X-RateLimit-Reset")
)

// maxClientRequestIDLength is the longest X-Request-Id kept from a client, in bytes.
const maxClientRequestIDLength = 64

var (
	contentTypeJSON = []byte("application/json")
	dataPrefix      = []byte(`{"data":`)
	dataSuffix      = []byte(`}`)

	// wwwAuthenticateMissing is the challenge for a request without
	// credentials, which must carry no error attribute (RFC 6750, section 3).
	wwwAuthenticateMissing = []byte(`Bearer`)
	wwwAuthenticateInvalid = []byte(`Bearer error="invalid_token"`)
)

// requestIDs generates request ids: a random prefix per process, so ids of
// different nodes and restarts do not collide, then a counter in base 36.
type requestIDs struct {
	prefix  string
	counter atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var random [6]byte
	_, _ = rand.Read(random[:]) // crypto/rand.Read never returns an error since Go 1.24.
	return &requestIDs{prefix: hex.EncodeToString(random[:]) + "-"}
}

func (g *requestIDs) next() string {
	var buf [48]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.counter.Add(1), 36)
	return string(b)
}

// requestIDFor returns the client's X-Request-Id when it is 1 to 64
// printable ASCII characters without spaces, so ids can be traced across
// services, and a new id otherwise.
func (g *requestIDs) requestIDFor(header *fasthttp.RequestHeader) string {
	id := header.Peek(headerRequestID)
	if validClientRequestID(id) {
		return string(id)
	}
	return g.next()
}

func validClientRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > maxClientRequestIDLength {
		return false
	}
	for _, c := range id {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// writeRateLimitHeaders sets the IETF draft RateLimit and RateLimit-Policy
// headers and their X-RateLimit-* predecessors for decision under limit. It
// builds the values in scratch and returns it for reuse.
func writeRateLimitHeaders(h *fasthttp.ResponseHeader, scratch []byte, limit gcra.Limit, decision gcra.Decision, now time.Time) []byte {
	resetSeconds := int64(gcra.RetryAfterSeconds(decision.ResetAfter))
	windowSeconds := int64(limit.Period / time.Second)
	rate := int64(limit.Rate)
	remaining := int64(decision.Remaining)

	b := strconv.AppendInt(scratch[:0], rate, 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, windowSeconds, 10)
	b = append(b, ";burst="...)
	b = strconv.AppendInt(b, int64(limit.Burst), 10)
	h.SetCanonical(headerRateLimitPolicy, b)

	b = append(b[:0], "limit="...)
	b = strconv.AppendInt(b, rate, 10)
	b = append(b, ", remaining="...)
	b = strconv.AppendInt(b, remaining, 10)
	b = append(b, ", reset="...)
	b = strconv.AppendInt(b, resetSeconds, 10)
	h.SetCanonical(headerRateLimit, b)

	b = strconv.AppendInt(b[:0], rate, 10)
	h.SetCanonical(headerXRateLimitLimit, b)

	b = strconv.AppendInt(b[:0], remaining, 10)
	h.SetCanonical(headerXRateLimitRemaining, b)

	// The reset instant is rounded up to a whole second, so a client that
	// waits until then finds the limit full.
	resetAt := now.Add(decision.ResetAfter)
	resetUnix := resetAt.Unix()
	if resetAt.Nanosecond() > 0 {
		resetUnix++
	}
	b = strconv.AppendInt(b[:0], resetUnix, 10)
	h.SetCanonical(headerXRateLimitReset, b)

	return b
}

// retryAfterSeconds is the whole seconds a rejected client must wait, at least 1.
func retryAfterSeconds(decision gcra.Decision) int {
	return max(1, gcra.RetryAfterSeconds(decision.RetryAfter))
}

// bearerToken returns the token of an Authorization header value of the form
// "Bearer <token>", where the scheme is case-insensitive (RFC 7235) and the
// token has no spaces or control characters.
func bearerToken(header []byte) ([]byte, bool) {
	const scheme = "bearer"
	if len(header) <= len(scheme)+1 || header[len(scheme)] != ' ' {
		return nil, false
	}
	if !bytes.EqualFold(header[:len(scheme)], []byte(scheme)) {
		return nil, false
	}

	token := bytes.TrimLeft(header[len(scheme)+1:], " ")
	if len(token) == 0 {
		return nil, false
	}
	for _, c := range token {
		if c <= ' ' || c > '~' {
			return nil, false
		}
	}
	return token, true
}

// clientIP returns the address the IP rate limit applies to. It is the
// remote address, unless that is a trusted proxy: then it is the right-most
// X-Forwarded-For entry that is not a trusted proxy, because entries further
// left were written by the client and can be forged.
func clientIP(ctx *fasthttp.RequestCtx, trusted []netip.Prefix) netip.Addr {
	remote, _ := netip.AddrFromSlice(ctx.RemoteIP())
	remote = remote.Unmap()
	if !isTrusted(remote, trusted) {
		return remote
	}

	headers := ctx.Request.Header.PeekAll(headerForwardedFor)
	for i := len(headers) - 1; i >= 0; i-- {
		list := headers[i]
		for len(list) > 0 {
			entry := list
			comma := bytes.LastIndexByte(list, ',')
			if comma >= 0 {
				entry = list[comma+1:]
				list = list[:comma]
			} else {
				list = nil
			}

			addr, err := netip.ParseAddr(string(bytes.TrimSpace(entry)))
			if err != nil {
				// A trusted proxy wrote this entry, so it should be an address.
				// Fall back to the proxy's own address rather than guess.
				return remote
			}
			addr = addr.Unmap()
			if !isTrusted(addr, trusted) {
				return addr
			}
		}
	}
	return remote
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, prefix := range trusted {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// parseTrustedProxies parses CIDRs such as "10.0.0.0/8", and also single
// addresses, which stand for a prefix of their full length.
func parseTrustedProxies(entries []string) ([]netip.Prefix, error) {
	prefixes := make([]netip.Prefix, 0, len(entries))
	for _, entry := range entries {
		prefix, err := netip.ParsePrefix(entry)
		if err != nil {
			addr, addrErr := netip.ParseAddr(entry)
			if addrErr != nil {
				return nil, err
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		prefixes = append(prefixes, prefix.Masked())
	}
	return prefixes, nil
}
