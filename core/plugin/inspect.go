package plugin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/toolgate/toolgate/sdk/abi"
)

// Info is what Inspect reports about a plugin file
// (`toolgate plugin inspect FILE.wasm`). It marshals to JSON.
type Info struct {
	File       string       `json:"file"`
	Size       int64        `json:"size"`
	SHA256     string       `json:"sha256"`
	ABIVersion int          `json:"abi_version"`
	Manifest   abi.Manifest `json:"manifest"`
	// Problems lists what would make the host refuse the plugin regardless
	// of plugins.toml (invalid tool names, schemas, ...); empty when none.
	Problems []string `json:"problems,omitempty"`
}

// Inspect loads a plugin file in a throwaway interpreter runtime (no
// compilation, no cache, no grants), reads its ABI version and manifest and
// reports them with the file's sha256. It fails when the file is not a
// toolgate plugin or speaks another ABI version; manifest problems that do
// not stop it from being read are listed in Info.Problems.
func Inspect(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	cacheDir, err := os.MkdirTemp("", "toolgate-inspect-")
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer os.RemoveAll(cacheDir)
	h := &Host{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h.cfg, err = Config{CacheDir: cacheDir, Interpreter: true, Logger: h.log}.withDefaults()
	if err != nil {
		return Info{}, err
	}
	if h.metrics, err = newMetrics(h.cfg.Registerer); err != nil {
		return Info{}, err
	}
	p := &loadedPlugin{h: h, src: source{name: "inspect", file: path}, log: h.log}
	defer p.close(ctx)
	wasm, digest, err := readSource(p.src)
	if err != nil {
		return Info{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	info := Info{File: path, Size: st.Size(), SHA256: digest}
	inst, err := p.bootstrap(ctx, wasm, DefaultMemory)
	if err != nil {
		return info, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer p.discard(ctx, inst)
	if err := inst.checkVersion(ctx); err != nil {
		return info, fmt.Errorf("inspect %s: %w", path, err)
	}
	info.ABIVersion = abi.Version
	raw, err := inst.readManifest(ctx)
	if err != nil {
		return info, fmt.Errorf("inspect %s: %w", path, err)
	}
	m, err := decodeManifest(raw)
	info.Manifest = m
	if err != nil {
		if m.Name == "" && len(m.Tools) == 0 {
			return info, fmt.Errorf("inspect %s: %w", path, err)
		}
		info.Problems = append(info.Problems, err.Error())
	}
	return info, nil
}
