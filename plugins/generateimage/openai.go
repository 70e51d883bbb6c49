package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/toolgate/toolgate/sdk"
)

const openAIService = "the OpenAI-compatible image server"

// openAIResponse is the images API's answer.
type openAIResponse struct {
	Data []struct {
		B64JSON string `json:"b64_json"`
	} `json:"data"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

// openAI asks an OpenAI-compatible images endpoint for one image. The API
// has no step count, so steps are not sent.
func openAI(ctx context.Context, prompt string, timeout time.Duration) (sdk.Result, error) {
	base, err := config(ctx, cfgOpenAIBaseURL, defaultOpenAIBaseURL)
	if err != nil {
		return sdk.Result{}, err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return sdk.Result{}, fmt.Errorf("config value %s = %q is not an http(s) base URL such as %q", cfgOpenAIBaseURL, base, defaultOpenAIBaseURL)
	}
	model, err := config(ctx, cfgOpenAIModel, defaultOpenAIModel)
	if err != nil {
		return sdk.Result{}, err
	}
	size, err := config(ctx, cfgOpenAISize, defaultOpenAISize)
	if err != nil {
		return sdk.Result{}, err
	}
	key, err := secret(ctx, backendOpenAI, secretOpenAIKey, false)
	if err != nil {
		return sdk.Result{}, err
	}
	body, err := json.Marshal(struct {
		Model          string `json:"model"`
		Prompt         string `json:"prompt"`
		N              int    `json:"n"`
		Size           string `json:"size"`
		ResponseFormat string `json:"response_format"`
	}{model, prompt, 1, size, "b64_json"})
	if err != nil {
		return sdk.Result{}, fmt.Errorf("encoding the request: %w", err)
	}
	header := map[string][]string{}
	if key != "" {
		header["Authorization"] = []string{"Bearer " + key}
	}
	resp, err := postJSON(ctx, openAIService, strings.TrimSuffix(base, "/")+"/images/generations", header, body, timeout)
	if err != nil {
		return sdk.Result{}, err
	}
	img, mime, err := parseOpenAI(resp)
	if err != nil {
		return sdk.Result{}, err
	}
	report(ctx, 3, 3, "image received")
	return sdk.Image(img, mime), nil
}

// parseOpenAI turns the images API's answer into the image or an error.
func parseOpenAI(resp sdk.HTTPResponse) ([]byte, string, error) {
	var r openAIResponse
	jsonErr := json.Unmarshal(resp.Body, &r)
	if resp.Status < 200 || resp.Status > 299 {
		detail := ""
		if jsonErr == nil && r.Error != nil {
			detail = r.Error.Message
		}
		return nil, "", statusError(openAIService, resp, detail)
	}
	if jsonErr != nil {
		return nil, "", fmt.Errorf("%w: %s returned a body that is not images API JSON: %v", errUpstream, openAIService, jsonErr)
	}
	if r.Error != nil {
		return nil, "", fmt.Errorf("%w: %s reported an error: %s", errUpstream, openAIService, clip(r.Error.Message))
	}
	if len(r.Data) == 0 {
		return nil, "", fmt.Errorf("%w: %s returned no images", errUpstream, openAIService)
	}
	return decodeImage(openAIService, r.Data[0].B64JSON)
}
