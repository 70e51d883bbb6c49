package plugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// startWatch watches the drop-in folder and reloads, debounced, when a
// .wasm file in it is created, written, removed or renamed.
func (h *Host) startWatch() error {
	if err := os.MkdirAll(h.cfg.DropInDir, 0o755); err != nil {
		return fmt.Errorf("create drop-in folder: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch drop-in folder: %w", err)
	}
	if err := w.Add(h.cfg.DropInDir); err != nil {
		_ = w.Close()
		return fmt.Errorf("watch drop-in folder %s: %w", h.cfg.DropInDir, err)
	}
	h.watcher = w
	h.stopWatch = make(chan struct{})
	h.watchDone = make(chan struct{})
	go h.watchLoop()
	return nil
}

func (h *Host) watchLoop() {
	defer close(h.watchDone)
	defer h.watcher.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-h.stopWatch:
			timer.Stop()
			return
		case ev, ok := <-h.watcher.Events:
			if !ok {
				return
			}
			if !strings.HasSuffix(filepath.Base(ev.Name), ".wasm") || ev.Op == fsnotify.Chmod {
				continue
			}
			h.log.Debug("drop-in folder changed", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(h.cfg.Debounce)
		case err, ok := <-h.watcher.Errors:
			if !ok {
				return
			}
			h.log.Warn("watching the drop-in folder", "err", err)
		case <-timer.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			_ = h.Reload(ctx) // Reload logs and notifies on failure.
			cancel()
		}
	}
}
