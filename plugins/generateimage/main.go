// Command generateimage is toolgate's reference plugin: one tool,
// generateImage, that turns a prompt into an image and requires the
// image_generation permission, like the TypeScript original's tool.
//
// The backend is chosen by the operator with the config value "backend" in
// plugins.toml:
//
//   - "procedural" (the default): an offline preview rendered in the plugin,
//     a PNG that is the same for the same prompt, different between prompts,
//     and more detailed with more steps, plus a text block saying it is a
//     preview. It needs no network and no secrets.
//   - "workers-ai": Cloudflare Workers AI's REST API running
//     @cf/black-forest-labs/flux-1-schnell, the original's model, with the
//     secrets cloudflare_account_id and cloudflare_api_token.
//   - "openai": an OpenAI-compatible images endpoint
//     (POST {openai_base_url}/images/generations), with the optional secret
//     openai_api_key, so local image servers work too.
//
// Build it as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o generateimage.wasm ./plugins/generateimage
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/toolgate/toolgate/sdk"
)

// Config value and secret names. Every name is declared in the manifest,
// so plugins.toml must grant each one (an empty config value means the
// default).
const (
	cfgBackend        = "backend"
	cfgOpenAIBaseURL  = "openai_base_url"
	cfgOpenAIModel    = "openai_model"
	cfgOpenAISize     = "openai_size"
	cfgRequestTimeout = "request_timeout"

	secretCFAccount = "cloudflare_account_id"
	secretCFToken   = "cloudflare_api_token"
	secretOpenAIKey = "openai_api_key"
)

// Backends.
const (
	backendProcedural = "procedural"
	backendWorkersAI  = "workers-ai"
	backendOpenAI     = "openai"
)

// Defaults for empty config values.
const (
	defaultOpenAIBaseURL  = "https://api.openai.com/v1"
	defaultOpenAIModel    = "dall-e-3"
	defaultOpenAISize     = "1024x1024"
	defaultRequestTimeout = 60 * time.Second
)

// httpHosts are the hosts the HTTP backends may reach: Cloudflare's API,
// OpenAI's, and a local image server (which the operator must also allow
// with allow_private_hosts). An openai_base_url on another host needs its
// host added here and a rebuild: the manifest is fixed at build time.
var httpHosts = []string{"api.cloudflare.com", "api.openai.com", "localhost"}

// GenerateImageArgs are generateImage's arguments, as in the original.
type GenerateImageArgs struct {
	Prompt string `json:"prompt" jsonschema:"A text description of the image you want to generate." schema:"minLength=1,maxLength=2048"`
	Steps  int    `json:"steps" jsonschema:"The number of diffusion steps; higher values can improve quality but take longer. Must be between 4 and 8, inclusive." schema:"minimum=4,maximum=8,default=4"`
}

func init() {
	sdk.Plugin("generateimage", "1.0.0", "Generates images from text prompts (offline preview, Workers AI flux-1-schnell or an OpenAI-compatible server).",
		sdk.AllowHTTP(httpHosts...),
		sdk.UseConfig(cfgBackend, cfgOpenAIBaseURL, cfgOpenAIModel, cfgOpenAISize, cfgRequestTimeout),
		sdk.UseSecrets(secretCFAccount, secretCFToken, secretOpenAIKey),
		sdk.UseProgress())
	sdk.Tool("generateImage",
		"Generate an image from a text description, using the `flux-1-schnell` model when the server runs it on Workers AI "+
			"(otherwise an OpenAI-compatible model, or an offline preview). Works best with 8 steps.",
		generateImage,
		sdk.Title("Generate image"),
		sdk.RequirePermissions("image_generation"),
		sdk.Annotations(sdk.ToolAnnotations{ReadOnly: true, OpenWorld: true}))
}

func generateImage(ctx context.Context, args GenerateImageArgs) (sdk.Result, error) {
	prompt := strings.TrimSpace(args.Prompt)
	if prompt == "" {
		return sdk.Errorf("the prompt is empty: describe the image you want"), nil
	}
	backend, err := config(ctx, cfgBackend, backendProcedural)
	if err != nil {
		return sdk.Result{}, err
	}
	switch backend {
	case backendProcedural:
		return procedural(ctx, prompt, args.Steps)
	case backendWorkersAI:
		timeout, err := requestTimeout(ctx)
		if err != nil {
			return sdk.Result{}, err
		}
		return workersAI(ctx, prompt, args.Steps, timeout)
	case backendOpenAI:
		timeout, err := requestTimeout(ctx)
		if err != nil {
			return sdk.Result{}, err
		}
		return openAI(ctx, prompt, timeout)
	}
	return sdk.Errorf("the operator configured backend %q, which this plugin does not know; use %q, %q or %q",
		backend, backendProcedural, backendWorkersAI, backendOpenAI), nil
}

// procedural renders the offline preview.
func procedural(ctx context.Context, prompt string, steps int) (sdk.Result, error) {
	img := renderPreview(prompt, steps, previewSize, func(step int) {
		report(ctx, float64(step), float64(steps+1), fmt.Sprintf("rendering detail step %d of %d", step, steps))
	})
	data, err := encodePNG(img)
	if err != nil {
		return sdk.Result{}, fmt.Errorf("rendering the preview: %w", err)
	}
	report(ctx, float64(steps+1), float64(steps+1), "encoded the PNG")
	return sdk.Image(data, "image/png").WithText(fmt.Sprintf(
		"Offline preview (%d×%d, %d detail steps): a pattern rendered from the prompt without a model, not an AI-generated image. "+
			"The operator can set backend = %q or %q in plugins.toml for real images.",
		previewSize, previewSize, steps, backendWorkersAI, backendOpenAI)), nil
}

// config reads a config value; a missing or empty one is def.
func config(ctx context.Context, name, def string) (string, error) {
	v, err := sdk.Config(ctx, name)
	switch {
	case errors.Is(err, sdk.ErrNotFound):
		return def, nil
	case err != nil:
		return "", fmt.Errorf("reading config value %s: %w", name, err)
	case strings.TrimSpace(v) == "":
		return def, nil
	}
	return strings.TrimSpace(v), nil
}

// requestTimeout reads request_timeout, a Go duration such as "60s".
func requestTimeout(ctx context.Context) (time.Duration, error) {
	v, err := config(ctx, cfgRequestTimeout, "")
	if err != nil || v == "" {
		return defaultRequestTimeout, err
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		if secs, aerr := strconv.Atoi(v); aerr == nil && secs > 0 {
			return time.Duration(secs) * time.Second, nil
		}
		return 0, fmt.Errorf("config value %s = %q is not a positive duration such as \"60s\"", cfgRequestTimeout, v)
	}
	return d, nil
}

// report sends a progress report. Progress is best effort: a failure is
// logged, not returned.
func report(ctx context.Context, done, total float64, msg string) {
	if err := sdk.Progress(ctx, done, total, msg); err != nil {
		sdk.LogDebug(ctx, "progress report failed", "err", err.Error())
	}
}

// main is not run: a reactor's host calls the exports after _initialize.
func main() {}
