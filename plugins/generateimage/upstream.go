package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/toolgate/toolgate/sdk"
)

// maxImageBytes caps the image a backend may return: its base64 form must
// fit, with room to spare, in the host's default 8 MiB result limit.
const maxImageBytes = 5 << 20

// maxDetail caps how much of an upstream error message is shown.
const maxDetail = 300

// errUpstream marks failures of the image service (as opposed to the
// plugin's configuration).
var errUpstream = errors.New("image generation failed")

// postJSON sends body to url with the headers and the timeout, reporting
// progress while it waits. It returns the response or a tool error saying
// what went wrong in words.
func postJSON(ctx context.Context, service, url string, header map[string][]string, body []byte, timeout time.Duration) (sdk.HTTPResponse, error) {
	h := map[string][]string{"Content-Type": {"application/json"}, "Accept": {"application/json"}}
	for k, v := range header {
		h[k] = v
	}
	report(ctx, 1, 3, "waiting for "+service)
	resp, err := sdk.HTTPDo(ctx, sdk.HTTPRequest{Method: "POST", URL: url, Header: h, Body: body, Timeout: timeout})
	if err != nil {
		return resp, transportError(service, err, timeout)
	}
	report(ctx, 2, 3, service+" answered")
	return resp, nil
}

// transportError explains a failed HTTP call.
func transportError(service string, err error, timeout time.Duration) error {
	var he *sdk.HostError
	msg := err.Error()
	if errors.As(err, &he) {
		msg = he.Message
	}
	switch {
	case errors.Is(err, sdk.ErrNotGranted):
		return fmt.Errorf("%s is not reachable from this plugin (%s); the operator must grant its host in plugins.toml", service, msg)
	case errors.Is(err, sdk.ErrCancelled):
		return fmt.Errorf("%w: the call's time ran out while waiting for %s", errUpstream, service)
	case errors.Is(err, sdk.ErrTooLarge):
		return fmt.Errorf("%w: %s sent a response over the host's size limit", errUpstream, service)
	case strings.Contains(msg, "deadline exceeded") || strings.Contains(msg, "Timeout"):
		return fmt.Errorf("%w: %s did not answer within %s; try again, or fewer steps", errUpstream, service, timeout)
	}
	return fmt.Errorf("%w: could not reach %s: %s", errUpstream, service, clip(msg))
}

// statusError explains a non-2xx answer. detail is the service's own error
// message, if its body had one.
func statusError(service string, resp sdk.HTTPResponse, detail string) error {
	if detail != "" {
		detail = ": " + clip(detail)
	}
	switch {
	case resp.Status == 401 || resp.Status == 403:
		return fmt.Errorf("%w: %s refused the credentials (HTTP %d)%s; the operator should check the API token", errUpstream, service, resp.Status, detail)
	case resp.Status == 429:
		wait := "later"
		if d, ok := retryAfter(header(resp.Header, "Retry-After"), time.Now()); ok {
			wait = "in " + d.String()
		}
		return fmt.Errorf("%w: %s is rate limiting requests (HTTP 429)%s; try again %s", errUpstream, service, detail, wait)
	case resp.Status >= 500:
		return fmt.Errorf("%w: %s had an internal error (HTTP %d)%s; try again later", errUpstream, service, resp.Status, detail)
	}
	return fmt.Errorf("%w: %s rejected the request (HTTP %d)%s", errUpstream, service, resp.Status, detail)
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > math.MaxInt32 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	for _, layout := range []string{time.RFC1123, time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, v); err == nil {
			return max(0, t.Sub(now).Round(time.Second)), true
		}
	}
	return 0, false
}

// header returns the first value of name, matched case-insensitively.
func header(h map[string][]string, name string) string {
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// decodeImage decodes a base64 image, refuses one over maxImageBytes, and
// returns it with its MIME type, sniffed from its first bytes.
func decodeImage(service, b64 string) ([]byte, string, error) {
	if b64 == "" {
		return nil, "", fmt.Errorf("%w: %s returned no image", errUpstream, service)
	}
	if base64.StdEncoding.DecodedLen(len(b64)) > maxImageBytes+3 {
		return nil, "", fmt.Errorf("%w: %s returned an image of about %s, over the %s this tool returns",
			errUpstream, service, mib(base64.StdEncoding.DecodedLen(len(b64))), mib(maxImageBytes))
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s returned an image that is not valid base64: %v", errUpstream, service, err)
	}
	if len(data) > maxImageBytes {
		return nil, "", fmt.Errorf("%w: %s returned an image of %s, over the %s this tool returns", errUpstream, service, mib(len(data)), mib(maxImageBytes))
	}
	mime := sniffImage(data)
	if mime == "" {
		return nil, "", fmt.Errorf("%w: %s returned data that is not a PNG, JPEG, WebP or GIF image", errUpstream, service)
	}
	return data, mime, nil
}

// sniffImage returns the MIME type of a PNG, JPEG, WebP or GIF image, or "".
func sniffImage(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png"
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return "image/jpeg"
	case len(b) >= 12 && bytes.HasPrefix(b, []byte("RIFF")) && string(b[8:12]) == "WEBP":
		return "image/webp"
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return "image/gif"
	}
	return ""
}

func mib(n int) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB" }

// clip shortens an upstream message to one line of at most maxDetail bytes.
func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxDetail {
		cut := maxDetail
		for cut > 0 && s[cut]&0xc0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// secret reads a secret the backend needs, explaining a missing one.
func secret(ctx context.Context, backend, name string, required bool) (string, error) {
	v, err := sdk.Secret(ctx, name)
	switch {
	case errors.Is(err, sdk.ErrNotFound) && !required:
		return "", nil
	case err != nil:
		return "", fmt.Errorf("the %s backend needs the secret %s, which the operator has not set up: %w", backend, name, err)
	case strings.TrimSpace(v) == "" && required:
		return "", fmt.Errorf("the %s backend needs the secret %s, which is empty", backend, name)
	}
	return strings.TrimSpace(v), nil
}
