package plugin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/toolgate/toolgate/sdk/abi"
)

// instance is one instantiated guest. It serves one call at a time.
type instance struct {
	p     *loadedPlugin
	mod   api.Module
	alloc api.Function
	call  api.Function
	// cur is the state of the call the instance is running, read by host
	// functions, the stdio writers and nanosleep.
	cur atomic.Pointer[callState]
	// idleSince is when the instance last went back to the pool; guarded
	// by the plugin's idleMu.
	idleSince time.Time
	// memSize is the linear-memory size counted in the linear_memory_bytes
	// gauge for this instance; only the goroutine owning the instance
	// (creating it, running its call, or closing it) touches it.
	memSize uint32
}

// countMemory brings the linear_memory_bytes gauge up to date with the
// instance's current memory size.
func (inst *instance) countMemory() {
	var size uint32
	if mem := inst.mod.Memory(); mem != nil {
		size = mem.Size()
	}
	if size != inst.memSize {
		inst.p.h.metrics.linear.WithLabelValues(inst.p.src.name).Add(float64(size) - float64(inst.memSize))
		inst.memSize = size
	}
}

// callState is what host functions see of the running call. It lives for
// one call (or one load step) and is reached through the instance.
type callState struct {
	ctx context.Context
	// inCall is true during toolgate_call, the only time host functions
	// beyond log and result_read work.
	inCall   bool
	tool     string
	callID   string
	progress func(Progress)
	tools    func() []abi.ToolAccess

	// pending is the result a host function keeps for result_read.
	pending []byte
	// logBytes counts log-line bytes written in this call.
	logBytes int

	mu       sync.Mutex
	stdio    bytes.Buffer
	stdioCut int
}

type callStateKey struct{}

func (s *callState) with(ctx context.Context) context.Context {
	return context.WithValue(ctx, callStateKey{}, s)
}

func stateFrom(ctx context.Context) *callState {
	s, _ := ctx.Value(callStateKey{}).(*callState)
	return s
}

// stdioWriter collects a guest's stdout or stderr into the running call's
// capped buffer.
type stdioWriter struct {
	inst *instance
}

func (w stdioWriter) Write(b []byte) (int, error) {
	st := w.inst.cur.Load()
	if st == nil {
		return len(b), nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := len(b)
	room := max(w.inst.p.h.cfg.StdioLimit-st.stdio.Len(), 0)
	if room < n {
		st.stdioCut += n - room
		b = b[:room]
	}
	st.stdio.Write(b)
	// Dropped bytes count as written: the guest must not retry them.
	return n, nil
}

// flushStdio logs what the guest printed during the call.
func (p *loadedPlugin) flushStdio(st *callState) {
	st.mu.Lock()
	out, cut := st.stdio.String(), st.stdioCut
	st.mu.Unlock()
	if out == "" && cut == 0 {
		return
	}
	args := []any{"tool", st.tool, "output", out}
	if st.callID != "" {
		args = append(args, "call_id", st.callID)
	}
	if cut > 0 {
		args = append(args, "dropped_bytes", cut)
	}
	p.log.Info("plugin stdout/stderr", args...)
}

// nanosleep is the guest's real sleep; it returns early when the running
// call's context is done, so a sleeping guest does not outlive its deadline.
func (inst *instance) nanosleep(ns int64) {
	if ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	var done <-chan struct{}
	if st := inst.cur.Load(); st != nil {
		done = st.ctx.Done()
	}
	select {
	case <-t.C:
	case <-done:
	}
}

// newInstance instantiates the plugin once, runs _initialize, and caches
// the export handles.
func (p *loadedPlugin) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{p: p}
	st := &callState{ctx: ctx, tool: "(initialize)"}
	inst.cur.Store(st)
	defer inst.cur.Store(nil)
	defer p.flushStdio(st)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(inst.nanosleep).
		WithRandSource(rand.Reader).
		WithStdout(stdioWriter{inst}).
		WithStderr(stdioWriter{inst})
	if p.hasInit {
		cfg = cfg.WithStartFunctions(abi.ExportInitialize)
	} else {
		cfg = cfg.WithStartFunctions()
	}
	mod, err := p.rt.InstantiateModule(st.with(ctx), p.cm, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	inst.mod = mod
	inst.alloc = mod.ExportedFunction(abi.ExportAlloc)
	inst.call = mod.ExportedFunction(abi.ExportCall)
	p.h.metrics.instances.WithLabelValues(p.src.name).Inc()
	inst.countMemory()
	return inst, nil
}

// discard closes an instance that must not serve again.
func (p *loadedPlugin) discard(ctx context.Context, inst *instance) {
	if inst == nil || inst.mod == nil {
		return
	}
	_ = inst.mod.Close(context.WithoutCancel(ctx))
	p.h.metrics.instances.WithLabelValues(p.src.name).Dec()
	if inst.memSize != 0 {
		p.h.metrics.linear.WithLabelValues(p.src.name).Sub(float64(inst.memSize))
		inst.memSize = 0
	}
}

func (inst *instance) checkVersion(ctx context.Context) error {
	st := &callState{ctx: ctx, tool: "(abi version)"}
	inst.cur.Store(st)
	defer inst.cur.Store(nil)
	defer inst.p.flushStdio(st)
	res, err := inst.mod.ExportedFunction(abi.ExportABIVersion).Call(st.with(ctx))
	if err != nil {
		return fmt.Errorf("%s: %w", abi.ExportABIVersion, err)
	}
	if v := int32(res[0]); v != abi.Version {
		return fmt.Errorf("plugin speaks ABI version %d, but this host speaks ABI version %d; rebuild it against a matching SDK", v, abi.Version)
	}
	return nil
}

func (inst *instance) readManifest(ctx context.Context) ([]byte, error) {
	st := &callState{ctx: ctx, tool: "(manifest)"}
	inst.cur.Store(st)
	defer inst.cur.Store(nil)
	defer inst.p.flushStdio(st)
	res, err := inst.mod.ExportedFunction(abi.ExportManifest).Call(st.with(ctx))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abi.ExportManifest, err)
	}
	ptr, n := abi.Unpack(res[0])
	if n > abi.MaxManifestBytes {
		return nil, fmt.Errorf("manifest is %d bytes, over the %d byte limit", n, abi.MaxManifestBytes)
	}
	b, ok := inst.mod.Memory().Read(ptr, n)
	if !ok {
		return nil, fmt.Errorf("manifest pointer %#x+%d is outside the plugin's memory", ptr, n)
	}
	return bytes.Clone(b), nil
}

// errBusy is acquire's answer when no slot is free and the call cannot
// wait for one.
var errBusy = errors.New("every instance is in use")

// acquire takes a call slot and an instance: an idle warm one, or a fresh
// one. Without a free slot it waits in the plugin's queue (see waitSlot).
func (p *loadedPlugin) acquire(ctx context.Context) (*instance, error) {
	select {
	case p.sem <- struct{}{}:
	default:
		if err := p.waitSlot(ctx); err != nil {
			return nil, err
		}
	}
	if p.isolation == IsolationPooled {
		if inst := p.takeIdle(); inst != nil {
			return inst, nil
		}
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		<-p.sem
		return nil, err
	}
	return inst, nil
}

// waitSlot waits for a call slot: errBusy when maxQueue calls are waiting
// already or none frees up within queueTimeout, ctx's error when ctx ends
// first.
func (p *loadedPlugin) waitSlot(ctx context.Context) error {
	if p.waiting.Add(1) > int64(p.maxQueue) {
		p.waiting.Add(-1)
		return errBusy
	}
	defer p.waiting.Add(-1)
	t := time.NewTimer(p.queueTimeout)
	defer t.Stop()
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errBusy
	}
}

// release returns a healthy instance to the pool (or closes it) and frees
// the call slot.
func (p *loadedPlugin) release(ctx context.Context, inst *instance, healthy bool) {
	inst.countMemory()
	if healthy && p.isolation == IsolationPooled && inst.mod.Memory().Size() <= p.recycleAbove && p.putIdle(inst) {
		inst = nil
	}
	if inst != nil {
		p.discard(ctx, inst)
		if p.isolation == IsolationPooled {
			p.replenish()
		}
	}
	<-p.sem
}

// replenish starts a fresh instance in the background to replace one that
// was discarded, so the next call does not pay for instantiation. It does
// nothing once the plugin is closing.
func (p *loadedPlugin) replenish() {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.closing {
		return
	}
	p.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		inst, err := p.newInstance(ctx)
		if err != nil {
			p.log.Warn("cannot start a replacement instance; the next call will try again", "err", err)
			return
		}
		if !p.putIdle(inst) {
			p.discard(ctx, inst)
		}
	})
}

// takeIdle pops the most recently used warm instance, or returns nil.
// Handing out the newest keeps the older ones idle, so that shrinkIdle can
// close them once the load has gone.
func (p *loadedPlugin) takeIdle() *instance {
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	inst := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return inst
}

// putIdle pushes a warm instance onto the pool, stamped with the time it
// went idle. It reports false, keeping nothing, when the pool is full or
// closed; the caller then closes the instance.
func (p *loadedPlugin) putIdle(inst *instance) bool {
	return p.putIdleSince(inst, p.h.now())
}

// putIdleSince is putIdle with the instance idle since the given time: it
// goes into the stack where that time keeps it ordered.
func (p *loadedPlugin) putIdleSince(inst *instance, since time.Time) bool {
	p.idleMu.Lock()
	defer p.idleMu.Unlock()
	if p.idleClosed || len(p.idle) >= p.poolSize {
		return false
	}
	inst.idleSince = since
	i := len(p.idle)
	for i > 0 && p.idle[i-1].idleSince.After(since) {
		i--
	}
	p.idle = slices.Insert(p.idle, i, inst)
	return true
}

// shrinkIdle closes the warm instances that have been idle for longer than
// ttl, keeping at least one. Only instances in the pool are looked at, so
// an instance serving a call is never closed; taking them out happens
// under idleMu, so acquire either gets an instance before it goes or does
// not see it. It does nothing once the plugin is closing. It returns how
// many instances it closed.
func (p *loadedPlugin) shrinkIdle(now time.Time, ttl time.Duration) int {
	p.bgMu.Lock()
	if p.closing {
		p.bgMu.Unlock()
		return 0
	}
	// Registered in bg, so close waits for these instances to be closed
	// before it closes the runtime.
	p.bg.Add(1)
	p.bgMu.Unlock()
	defer p.bg.Done()

	p.idleMu.Lock()
	// The pool is a stack: idleSince grows from the bottom up, so the
	// expired instances are a prefix of it. The newest always stays.
	expired := 0
	for expired < len(p.idle)-1 && now.Sub(p.idle[expired].idleSince) > ttl {
		expired++
	}
	victims := make([]*instance, expired)
	copy(victims, p.idle[:expired])
	rest := copy(p.idle, p.idle[expired:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.idleMu.Unlock()

	for _, inst := range victims {
		p.discard(context.Background(), inst)
	}
	if len(victims) > 0 {
		p.log.Debug("closed idle plugin instances", "closed", len(victims), "idle_ttl", ttl.String())
	}
	return len(victims)
}

// recycleGrown replaces every idle instance whose linear memory has grown
// past twice a fresh instance's with a fresh one, and returns how many it
// replaced. A guest's memory never shrinks: a Go guest that once rendered
// an image keeps the heap it grew for it. The idle loop calls it when the
// host has gone quiet, before it returns freed memory to the OS, so an
// idle plugin holds what a fresh instance needs, not its largest call. A
// replacement keeps the idle time of the instance it replaces. It does
// nothing once the plugin is closing.
func (p *loadedPlugin) recycleGrown(ctx context.Context) int {
	p.bgMu.Lock()
	if p.closing {
		p.bgMu.Unlock()
		return 0
	}
	// Registered in bg, so close waits for this before it closes the
	// runtime.
	p.bg.Add(1)
	p.bgMu.Unlock()
	defer p.bg.Done()

	p.idleMu.Lock()
	var grown []*instance
	keep := p.idle[:0]
	for _, inst := range p.idle {
		if uint64(inst.memSize) > 2*uint64(p.freshMemory) {
			grown = append(grown, inst)
		} else {
			keep = append(keep, inst)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.idleMu.Unlock()

	for _, old := range grown {
		size, since := old.memSize, old.idleSince
		start := time.Now()
		p.discard(ctx, old)
		inst, err := p.newInstance(ctx)
		if err != nil {
			// The next call starts one.
			p.log.Warn("cannot start an instance to replace a grown one", "err", err)
			continue
		}
		if !p.putIdleSince(inst, since) {
			p.discard(ctx, inst)
		}
		p.log.Debug("replaced an idle instance whose memory had grown", "memory_mib", size>>20, "fresh_mib", inst.memSize>>20,
			"took", time.Since(start).Round(time.Microsecond).String())
	}
	return len(grown)
}

// run executes one tool call. It returns the guest's result, or an *Error.
func (p *loadedPlugin) run(ctx context.Context, tool string, input []byte, opts CallOptions) (abi.CallResult, error) {
	lim := p.tools[tool]
	fail := func(kind ErrorKind, cause error, format string, args ...any) (abi.CallResult, error) {
		return abi.CallResult{}, &Error{Kind: kind, Plugin: p.src.name, Tool: tool, Message: fmt.Sprintf(format, args...), Err: cause}
	}
	cctx, cancel := context.WithTimeout(ctx, lim.timeout)
	defer cancel()
	ctxErr := func(err error) (abi.CallResult, error) {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(ErrKindCancelled, err, "the call was cancelled")
		}
		return fail(ErrKindTimeout, err, "the call did not finish within %s", lim.timeout)
	}

	inst, err := p.acquire(cctx)
	if err != nil {
		if errors.Is(err, errBusy) {
			return fail(ErrKindBusy, err, "busy: %d of %d instances in use; try again", p.poolSize, p.poolSize)
		}
		if cctx.Err() != nil {
			return ctxErr(err)
		}
		p.log.Error("cannot start a plugin instance", "tool", tool, "err", err)
		return fail(ErrKindUnavailable, err, "the plugin could not start an instance")
	}
	st := &callState{ctx: cctx, tool: tool, callID: opts.CallID, progress: opts.Progress, tools: opts.Tools}
	inst.cur.Store(st)
	healthy := false
	defer func() {
		inst.cur.Store(nil)
		p.flushStdio(st)
		p.release(ctx, inst, healthy)
	}()

	mem := inst.mod.Memory()
	res, err := inst.alloc.Call(st.with(cctx), uint64(len(input)))
	if err != nil {
		return p.callFailed(ctx, cctx, st, inst, tool, lim, err, ctxErr)
	}
	ptr := uint32(res[0])
	if ptr == 0 || !mem.Write(ptr, input) {
		return fail(ErrKindTrap, nil, "the plugin could not allocate %d bytes for the call input", len(input))
	}
	st.inCall = true
	res, err = inst.call.Call(st.with(cctx), uint64(ptr), uint64(len(input)))
	st.inCall = false
	st.pending = nil
	if err != nil {
		return p.callFailed(ctx, cctx, st, inst, tool, lim, err, ctxErr)
	}
	if size := int64(mem.Size()); size > lim.memory {
		return fail(ErrKindMemory, nil, "the call grew the plugin's memory to %d MiB, over its limit of %d MiB", size>>20, lim.memory>>20)
	}
	optr, olen := abi.Unpack(res[0])
	if int64(olen) > lim.maxOutput {
		return fail(ErrKindOutputTooLarge, nil, "the result is %d bytes, over the limit of %d bytes", olen, lim.maxOutput)
	}
	out, ok := mem.Read(optr, olen)
	if !ok {
		return fail(ErrKindBadOutput, nil, "the result pointer %#x+%d is outside the plugin's memory", optr, olen)
	}
	var cr abi.CallResult
	if err := decodeResult(out, &cr); err != nil {
		return fail(ErrKindBadOutput, err, "the result is not a valid call result: %v", err)
	}
	healthy = true
	if cr.Error != nil {
		return abi.CallResult{}, &Error{Kind: ErrKindGuest, Plugin: p.src.name, Tool: tool, Code: cr.Error.Code,
			Message: fmt.Sprintf("%s: %s", cr.Error.Code, truncate(cr.Error.Message, 1024))}
	}
	return cr, nil
}

// callFailed classifies an error returned by a guest export.
func (p *loadedPlugin) callFailed(ctx, cctx context.Context, st *callState, inst *instance, tool string, lim limits, err error,
	ctxErr func(error) (abi.CallResult, error)) (abi.CallResult, error) {
	if cctx.Err() != nil {
		return ctxErr(err)
	}
	st.mu.Lock()
	stdio := st.stdio.String()
	st.mu.Unlock()
	fail := func(kind ErrorKind, format string, args ...any) (abi.CallResult, error) {
		return abi.CallResult{}, &Error{Kind: kind, Plugin: p.src.name, Tool: tool, Message: fmt.Sprintf(format, args...), Err: err}
	}
	if strings.Contains(stdio, "out of memory") || int64(inst.mod.Memory().Size())+wasmPageSize > lim.memory {
		return fail(ErrKindMemory, "the plugin ran out of memory (limit %d MiB)", lim.memory>>20)
	}
	reason := firstLine(err.Error())
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		reason = fmt.Sprintf("the plugin exited with code %d", exit.ExitCode())
	}
	if i := strings.Index(stdio, "panic: "); i >= 0 {
		reason += " (" + truncate(firstLine(stdio[i:]), 200) + ")"
	}
	return fail(ErrKindTrap, "the plugin crashed: %s", reason)
}

// decodeResult parses a CallResult strictly.
func decodeResult(b []byte, cr *abi.CallResult) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cr); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	for i, c := range cr.Content {
		switch c.Type {
		case abi.ContentText:
		case abi.ContentImage:
			if c.MimeType == "" || len(c.Data) == 0 {
				return fmt.Errorf("content %d: an image needs data and mime_type", i)
			}
		default:
			return fmt.Errorf("content %d: unknown type %q", i, c.Type)
		}
	}
	if cr.Error != nil && cr.Error.Code == "" {
		return errors.New("error without a code")
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
