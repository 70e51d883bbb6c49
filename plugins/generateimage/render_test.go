package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"testing"

	"github.com/toolgate/toolgate/sdk/abi"
	"github.com/toolgate/toolgate/sdk/sdktest"
)

var imageCaller = abi.Caller{UserID: "user_alice", Permissions: []string{"image_generation"}}

// generate calls generateImage through the SDK harness with the procedural
// backend and returns the decoded PNG and the result.
func generate(t *testing.T, p *sdktest.Plugin, prompt string, steps int) (image.Image, []byte, sdktest.Result) {
	t.Helper()
	res := p.Call("generateImage", map[string]any{"prompt": prompt, "steps": steps})
	if res.Error != nil || res.IsError {
		t.Fatalf("generateImage(%q, %d) failed: %.300s", prompt, steps, res.Raw)
	}
	var data []byte
	for _, c := range res.Content {
		if c.Type == abi.ContentImage {
			if c.MimeType != "image/png" {
				t.Fatalf("image MIME type %q, want image/png", c.MimeType)
			}
			data = c.Data
		}
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the image does not decode as PNG: %v", err)
	}
	return img, data, res
}

func TestProceduralPreview(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{Caller: imageCaller})
	cat, catPNG, res := generate(t, p, "a cat on a windowsill at dusk", 4)
	if b := cat.Bounds(); b.Dx() != previewSize || b.Dy() != previewSize {
		t.Errorf("size %v, want %d×%d", b, previewSize, previewSize)
	}
	if text := res.Text(); !bytes.Contains([]byte(text), []byte("Offline preview")) {
		t.Errorf("text %q does not say it is an offline preview", text)
	}
	_, again, _ := generate(t, p, "a cat on a windowsill at dusk", 4)
	if !bytes.Equal(catPNG, again) {
		t.Error("the same prompt gave different images")
	}
	for _, other := range []string{"a dog in the snow", "a cat on a windowsill at dawn", "A cat on a windowsill at dusk"} {
		img, _, _ := generate(t, p, other, 4)
		if d := meanAbsDiff(cat, img); d < 10 {
			t.Errorf("prompt %q: mean channel difference from the cat %.1f, want visibly different (≥ 10)", other, d)
		}
	}
	if got := p.Progress(); len(got) == 0 || got[len(got)-1].Done != got[len(got)-1].Total {
		t.Errorf("progress = %+v, want reports ending complete", got)
	}
}

func TestMoreStepsMoreDetail(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{Caller: imageCaller})
	for _, prompt := range []string{"a lighthouse in a storm", "neon city at night", "x"} {
		prev := -1.0
		for steps := 4; steps <= 8; steps++ {
			img, _, _ := generate(t, p, prompt, steps)
			e := edgeEnergy(img)
			t.Logf("%q steps %d: edge energy %.2f, %d colours", prompt, steps, e, distinctColours(img))
			if e <= prev*1.05 {
				t.Errorf("%q: edge energy at %d steps %.2f, not clearly above %.2f at %d", prompt, steps, e, prev, steps-1)
			}
			prev = e
		}
	}
}

func TestRenderIsDeterministicAndSized(t *testing.T) {
	tests := []struct {
		size, steps int
	}{{64, 4}, {100, 6}, {256, 8}}
	for _, tt := range tests {
		a := renderPreview("prompt", tt.steps, tt.size, nil)
		b := renderPreview("prompt", tt.steps, tt.size, nil)
		if a.Bounds().Dx() != tt.size || a.Bounds().Dy() != tt.size || !bytes.Equal(a.Pix, b.Pix) || len(a.Palette) != paletteSize {
			t.Errorf("size %d steps %d: bounds %v, deterministic %t", tt.size, tt.steps, a.Bounds(), bytes.Equal(a.Pix, b.Pix))
		}
		calls := 0
		renderPreview("prompt", tt.steps, tt.size, func(step int) {
			calls++
			if step != calls {
				t.Errorf("progress step %d, want %d", step, calls)
			}
		})
		if calls != tt.steps {
			t.Errorf("progress called %d times, want %d", calls, tt.steps)
		}
	}
}

func TestStepsArgument(t *testing.T) {
	p := sdktest.New(t, sdktest.Options{Caller: imageCaller})
	tests := []struct {
		args    string
		invalid bool
	}{
		{`{"prompt":"a"}`, false},
		{`{"prompt":"a","steps":8}`, false},
		{`{"prompt":"a","steps":3}`, true},
		{`{"prompt":"a","steps":9}`, true},
		{`{"prompt":"a","steps":4.5}`, true},
		{`{"steps":4}`, true},
		{`{"prompt":""}`, true},
	}
	for _, tt := range tests {
		res := p.Call("generateImage", tt.args)
		if got := res.Error != nil && res.Error.Code == abi.ErrInvalidArguments; got != tt.invalid {
			t.Errorf("generateImage(%s) = %.200s, invalid_arguments %t, want %t", tt.args, res.Raw, got, tt.invalid)
		}
	}
	res := p.Call("generateImage", `{"prompt":"   "}`)
	if !res.IsError || !bytes.Contains([]byte(res.Text()), []byte("prompt is empty")) {
		t.Errorf("blank prompt = %.200s, want a tool error", res.Raw)
	}
	if res := p.CallAs(abi.Caller{UserID: "user_bob"}, "generateImage", `{"prompt":"a"}`); len(res.Denied) != 1 || res.Denied[0] != "image_generation" {
		t.Errorf("caller without image_generation: denied %v, want [image_generation]", res.Denied)
	}
	var schema struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	tool, _ := p.Tool("generateImage")
	if err := json.Unmarshal(tool.InputSchema, &schema); err != nil {
		t.Fatal(err)
	}
	steps := schema.Properties["steps"]
	if steps["type"] != "integer" || steps["minimum"] != 4.0 || steps["maximum"] != 8.0 || steps["default"] != 4.0 ||
		len(schema.Required) != 1 || schema.Required[0] != "prompt" {
		t.Errorf("input schema = %s", tool.InputSchema)
	}
}

// luminance returns the pixel's luma in 0-255.
func luminance(img image.Image, x, y int) float64 {
	r, g, b, _ := img.At(x, y).RGBA()
	return (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 257
}

// edgeEnergy is the mean absolute luma difference between neighbouring
// pixels: finer detail gives more of it.
func edgeEnergy(img image.Image) float64 {
	b := img.Bounds()
	sum, n := 0.0, 0
	for y := b.Min.Y; y < b.Max.Y-1; y++ {
		for x := b.Min.X; x < b.Max.X-1; x++ {
			l := luminance(img, x, y)
			sum += math.Abs(luminance(img, x+1, y)-l) + math.Abs(luminance(img, x, y+1)-l)
			n += 2
		}
	}
	return sum / float64(n)
}

func distinctColours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r, g, bl}] = true
		}
	}
	return len(seen)
}

func meanAbsDiff(a, b image.Image) float64 {
	sum, n := 0.0, 0
	bounds := a.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			sum += math.Abs(float64(r1)-float64(r2)) + math.Abs(float64(g1)-float64(g2)) + math.Abs(float64(b1)-float64(b2))
			n += 3
		}
	}
	return sum / float64(n) / 257
}
