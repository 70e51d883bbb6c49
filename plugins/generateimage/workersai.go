package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/toolgate/toolgate/sdk"
)

// Workers AI, as the original calls it through its AI binding.
const (
	cfAPI     = "https://api.cloudflare.com/client/v4"
	cfModel   = "@cf/black-forest-labs/flux-1-schnell"
	cfService = "Workers AI"
)

// cfResponse is the Cloudflare API envelope around the model's output.
type cfResponse struct {
	Result *struct {
		Image string `json:"image"`
	} `json:"result"`
	Success  bool        `json:"success"`
	Errors   []cfMessage `json:"errors"`
	Messages []cfMessage `json:"messages"`
}

type cfMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// workersAI runs flux-1-schnell on Workers AI and returns its JPEG.
func workersAI(ctx context.Context, prompt string, steps int, timeout time.Duration) (sdk.Result, error) {
	account, err := secret(ctx, backendWorkersAI, secretCFAccount, true)
	if err != nil {
		return sdk.Result{}, err
	}
	if !validAccountID(account) {
		return sdk.Result{}, fmt.Errorf("the secret %s is not a Cloudflare account ID (letters and digits)", secretCFAccount)
	}
	token, err := secret(ctx, backendWorkersAI, secretCFToken, true)
	if err != nil {
		return sdk.Result{}, err
	}
	body, err := json.Marshal(struct {
		Prompt string `json:"prompt"`
		Steps  int    `json:"steps"`
	}{prompt, steps})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("encoding the request: %w", err)
	}
	url := cfAPI + "/accounts/" + account + "/ai/run/" + cfModel
	resp, err := postJSON(ctx, cfService, url, map[string][]string{"Authorization": {"Bearer " + token}}, body, timeout)
	if err != nil {
		return sdk.Result{}, err
	}
	img, mime, err := parseWorkersAI(resp)
	if err != nil {
		return sdk.Result{}, err
	}
	report(ctx, 3, 3, "image received")
	return sdk.Image(img, mime), nil
}

// parseWorkersAI turns Cloudflare's answer into the image or an error.
func parseWorkersAI(resp sdk.HTTPResponse) ([]byte, string, error) {
	var r cfResponse
	jsonErr := json.Unmarshal(resp.Body, &r)
	if resp.Status < 200 || resp.Status > 299 {
		detail := ""
		if jsonErr == nil {
			detail = cfErrors(r.Errors)
		}
		return nil, "", statusError(cfService, resp, detail)
	}
	if jsonErr != nil {
		return nil, "", fmt.Errorf("%w: %s returned a body that is not its JSON envelope: %v", errUpstream, cfService, jsonErr)
	}
	if !r.Success {
		return nil, "", fmt.Errorf("%w: %s reported a failure: %s", errUpstream, cfService, clip(cfErrors(r.Errors)))
	}
	if r.Result == nil {
		return nil, "", fmt.Errorf("%w: %s returned no result", errUpstream, cfService)
	}
	return decodeImage(cfService, r.Result.Image)
}

func cfErrors(errs []cfMessage) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, fmt.Sprintf("%s (code %d)", e.Message, e.Code))
	}
	if len(parts) == 0 {
		return "no error given"
	}
	return strings.Join(parts, "; ")
}

// validAccountID accepts what can safely sit in the URL path: Cloudflare
// account IDs are 32 hexadecimal digits.
func validAccountID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
			return false
		}
	}
	return true
}
