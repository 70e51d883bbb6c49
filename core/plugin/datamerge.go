package plugin

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
)

// mergeGap is the largest run of zero bytes mergeDataSegments inserts to
// join two data segments.
const mergeGap = 64

// errNoMerge means the module is left as it is.
var errNoMerge = errors.New("data segments not mergeable")

// mergeDataSegments rewrites a module's data section so that neighbouring
// active data segments become one. Go's wasm output has tens of thousands
// of tiny segments (36,688 in the echo test plugin), and wazero evaluates an
// offset expression and copies once per segment on every instantiation:
// about half of the instantiation time. Merging them is what the
// instantiation budget needs.
//
// The rewrite is done only when it cannot change the memory a module starts
// with: every segment is active for memory 0 with an i32.const offset,
// no two segments overlap (so the order they are applied in does not
// matter and a gap is memory no segment writes, which is zero; the merged
// segments are written in address order), and the module has no data count section
// (so no instruction refers to segments by index). Otherwise, and for any
// malformed input, it returns errNoMerge and the caller uses the module as
// it is; wazero validates the result like any other module.
func mergeDataSegments(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || !bytes.Equal(wasm[:8], []byte{0, 'a', 's', 'm', 1, 0, 0, 0}) {
		return nil, errNoMerge
	}
	type section struct {
		id         byte
		start, end int // payload
	}
	var sections []section
	data := -1
	for i := 8; i < len(wasm); {
		id := wasm[i]
		size, n := binary.Uvarint(wasm[i+1:])
		if n <= 0 || size > uint64(len(wasm)) {
			return nil, errNoMerge
		}
		start := i + 1 + n
		end := start + int(size)
		if end > len(wasm) {
			return nil, errNoMerge
		}
		switch id {
		case 12: // data count
			return nil, errNoMerge
		case 11:
			if data >= 0 {
				return nil, errNoMerge
			}
			data = len(sections)
		}
		sections = append(sections, section{id, start, end})
		i = end
	}
	if data < 0 {
		return nil, errNoMerge
	}
	payload := wasm[sections[data].start:sections[data].end]
	count, n := binary.Uvarint(payload)
	if n <= 0 || count > uint64(len(payload)) {
		return nil, errNoMerge
	}
	p := payload[n:]
	type segment struct {
		offset uint32
		bytes  []byte
	}
	segs := make([]segment, 0, min(count, 1<<20))
	for k := uint64(0); k < count; k++ {
		// mode 0: active, memory 0, offset expression, bytes.
		if len(p) < 2 || p[0] != 0 || p[1] != 0x41 { // i32.const
			return nil, errNoMerge
		}
		off, n := readSleb32(p[2:])
		if n <= 0 || len(p) < 2+n+1 || p[2+n] != 0x0b { // end
			return nil, errNoMerge
		}
		p = p[2+n+1:]
		size, n := binary.Uvarint(p)
		if n <= 0 || size > uint64(len(p)-n) {
			return nil, errNoMerge
		}
		segs = append(segs, segment{uint32(off), p[n : n+int(size)]})
		p = p[n+int(size):]
	}
	if len(p) != 0 {
		return nil, errNoMerge
	}
	// With no two segments overlapping, the order they are applied in does
	// not matter and no segment writes into a gap.
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(a.offset, b.offset) })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i].offset) < uint64(segs[i-1].offset)+uint64(len(segs[i-1].bytes)) {
			return nil, errNoMerge
		}
	}
	// Group neighbours, then write each group as one segment.
	type group struct{ first, last int }
	var groups []group
	for i := range segs {
		if g := len(groups) - 1; g >= 0 {
			prev := segs[groups[g].last]
			if uint64(segs[i].offset)-(uint64(prev.offset)+uint64(len(prev.bytes))) <= mergeGap {
				groups[g].last = i
				continue
			}
		}
		groups = append(groups, group{i, i})
	}
	sec := make([]byte, 0, len(payload)+len(groups)*mergeGap)
	sec = binary.AppendUvarint(sec, uint64(len(groups)))
	for _, g := range groups {
		base := uint64(segs[g.first].offset)
		size := uint64(segs[g.last].offset) + uint64(len(segs[g.last].bytes)) - base
		sec = append(sec, 0, 0x41)
		sec = appendSleb32(sec, int32(segs[g.first].offset))
		sec = append(sec, 0x0b)
		sec = binary.AppendUvarint(sec, size)
		at := uint64(0)
		for _, sg := range segs[g.first : g.last+1] {
			for ; at < uint64(sg.offset)-base; at++ {
				sec = append(sec, 0)
			}
			sec = append(sec, sg.bytes...)
			at += uint64(len(sg.bytes))
		}
	}
	out := make([]byte, 0, len(wasm)+len(sec)-len(payload))
	out = append(out, wasm[:8]...)
	for i, s := range sections {
		body := wasm[s.start:s.end]
		if i == data {
			body = sec
		}
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// readSleb32 reads a signed LEB128 i32; n <= 0 on malformed input.
func readSleb32(b []byte) (int32, int) {
	var result int64
	var shift uint
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		result |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				result |= -1 << shift
			}
			if result < -1<<31 || result > 1<<31-1 {
				return 0, -1
			}
			return int32(result), i + 1
		}
	}
	return 0, -1
}

func appendSleb32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
