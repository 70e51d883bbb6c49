package main

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
)

// previewSize is the side of the procedural preview in pixels. 512×512 at
// 8 steps renders and encodes in well under a second in WebAssembly (see
// README.md for the measured numbers).
const previewSize = 512

// baseCells is the number of noise cells across the image at the first
// step; every further step doubles it, so step 8 reaches one cell per pixel
// at 512×512.
const baseCells = 4

// maxSteps is the most steps the tool allows.
const maxSteps = 8

// ampDecay is the amplitude of each octave relative to the one before;
// contrast stretches the summed noise across the palette.
const (
	ampDecay = 0.7
	contrast = 3
)

// paletteSize is the number of colours in the prompt's palette. The image
// is paletted (one byte per pixel), which makes the PNG about three times
// smaller and its encoding several times faster than RGBA's.
const paletteSize = 256

// renderPreview draws the offline preview of prompt: fractal value noise
// with steps octaves, coloured with a palette derived from the prompt. The
// same prompt and steps give the same pixels; each step adds an octave of
// finer detail. progress, if not nil, is called after each step.
func renderPreview(prompt string, steps, size int, progress func(step int)) *image.Paletted {
	h := fnv.New64a()
	h.Write([]byte(prompt))
	rng := splitmix(h.Sum64())

	pal := palette(&rng)
	field := make([]float32, size*size)
	// A second, coarse field shifts the palette across the image, so that
	// colours vary independently of the detail.
	shift := make([]float32, size*size)
	addOctaves(shift, size, 3, 2, &rng)
	// Each step adds an octave at twice the frequency and ampDecay times the
	// amplitude. The field is scaled by the sum of the amplitudes of all
	// possible steps, not of the steps taken, so the coarse shapes stay put
	// and every step only adds finer detail on top.
	amp, total := float32(1), float32(0)
	for step := range maxSteps {
		if step < steps {
			addOctave(field, size, baseCells<<step, amp, &rng)
			if progress != nil {
				progress(step + 1)
			}
		}
		total += amp
		amp *= ampDecay
	}
	scale := contrast / total
	offset := float32(rng.float())
	img := image.NewPaletted(image.Rect(0, 0, size, size), pal)
	for i, v := range field {
		t := v*scale + shift[i]*0.6 + offset
		t -= float32(math.Floor(float64(t)))
		img.Pix[i] = uint8(int(t*paletteSize) & (paletteSize - 1))
	}
	return img
}

// encodePNG encodes img as a PNG, favouring speed over size.
func encodePNG(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// palette builds a cosine gradient palette (a + b·cos(2π(c·t + d)) per
// channel) from the random source.
func palette(rng *splitmix) color.Palette {
	var a, b, c, d [3]float64
	for ch := range 3 {
		a[ch] = 0.35 + 0.3*rng.float()
		b[ch] = 0.25 + 0.25*rng.float()
		c[ch] = float64(1 + rng.next()%2)
		d[ch] = rng.float()
	}
	pal := make(color.Palette, paletteSize)
	for i := range pal {
		t := float64(i) / paletteSize
		var rgb [3]uint8
		for ch := range 3 {
			v := a[ch] + b[ch]*math.Cos(2*math.Pi*(c[ch]*t+d[ch]))
			rgb[ch] = uint8(math.Round(255 * min(1, max(0, v))))
		}
		pal[i] = color.NRGBA{R: rgb[0], G: rgb[1], B: rgb[2], A: 255}
	}
	return pal
}

// addOctaves adds n octaves of value noise starting at cells cells across.
func addOctaves(dst []float32, size, n, cells int, rng *splitmix) {
	amp := float32(1)
	for range n {
		addOctave(dst, size, cells, amp, rng)
		cells *= 2
		amp *= 0.5
	}
}

// addOctave adds amp times one octave of smooth value noise with cells
// lattice cells across the size×size field dst. The lattice values come
// from rng; the horizontal cell indices and weights are computed once per
// column, so the inner loop is four loads and three interpolations.
func addOctave(dst []float32, size, cells int, amp float32, rng *splitmix) {
	stride := cells + 1
	lattice := make([]float32, stride*stride)
	for i := range lattice {
		lattice[i] = float32(rng.float()) * amp
	}
	idx := make([]int32, size)
	wx := make([]float32, size)
	for x := range size {
		i, w := cellOf(x, size, cells)
		idx[x], wx[x] = int32(i), w
	}
	for y := range size {
		iy, wy := cellOf(y, size, cells)
		row0 := lattice[iy*stride : (iy+1)*stride]
		row1 := lattice[(iy+1)*stride : (iy+2)*stride]
		out := dst[y*size : (y+1)*size]
		for x := range out {
			i := idx[x]
			w := wx[x]
			top := row0[i] + (row0[i+1]-row0[i])*w
			bot := row1[i] + (row1[i+1]-row1[i])*w
			out[x] += top + (bot-top)*wy
		}
	}
}

// cellOf returns the lattice cell of pixel p and the smoothstep weight of
// its position within the cell.
func cellOf(p, size, cells int) (int, float32) {
	pos := (float64(p) + 0.5) * float64(cells) / float64(size)
	i := int(pos)
	if i >= cells {
		i = cells - 1
	}
	f := float32(pos - float64(i))
	return i, f * f * (3 - 2*f)
}

// splitmix is the SplitMix64 generator: small, fast and deterministic.
type splitmix uint64

func (s *splitmix) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float returns a number in [0, 1).
func (s *splitmix) float() float64 { return float64(s.next()>>11) / (1 << 53) }
