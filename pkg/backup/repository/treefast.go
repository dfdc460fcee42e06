package repository

import (
	"encoding/hex"
	"unicode/utf8"
)

// decodeTreeFast parses b if it is a tree exactly as EncodeTree writes
// it (no white space, fields in struct order, strings without escapes,
// every Bytes a plain string, numbers in their shortest form): what
// json.Unmarshal would give, several times faster (a restore decodes
// every tree of its snapshot). Anything else, or anything it is not
// sure of, returns ok false, and encoding/json decides. A fuzz test
// holds it to json.Unmarshal's result on every input it accepts.
func decodeTreeFast(b []byte) (t *Tree, ok bool) {
	d := fastDec{s: string(b)} // one copy; names and types share it
	if !d.lit(`{"nodes":[`) {
		return nil, false
	}
	nodes := []Node{}
	if !d.lit("]") {
		for {
			var n Node
			if !d.node(&n) {
				return nil, false
			}
			nodes = append(nodes, n)
			if d.lit(",") {
				continue
			}
			if d.lit("]") {
				break
			}
			return nil, false
		}
	}
	if !d.lit("}") || d.i != len(d.s) {
		return nil, false
	}
	return &Tree{Nodes: nodes}, true
}

type fastDec struct {
	s string
	i int
}

// lit consumes p if the input continues with it.
func (d *fastDec) lit(p string) bool {
	if len(d.s)-d.i >= len(p) && d.s[d.i:d.i+len(p)] == p {
		d.i += len(p)
		return true
	}
	return false
}

// str consumes a string without escapes or control characters, valid
// UTF-8, and returns its contents.
func (d *fastDec) str() (string, bool) {
	if !d.lit(`"`) {
		return "", false
	}
	start := d.i
	ascii := true
	for ; d.i < len(d.s); d.i++ {
		c := d.s[d.i]
		switch {
		case c == '"':
			v := d.s[start:d.i]
			d.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// uint consumes a non-negative integer of at most max.
func (d *fastDec) uint(max uint64) (uint64, bool) {
	start := d.i
	var v uint64
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		c := uint64(d.s[d.i] - '0')
		if v > (max-c)/10 {
			return 0, false
		}
		v = v*10 + c
		d.i++
	}
	n := d.i - start
	if n == 0 || (n > 1 && d.s[start] == '0') {
		return 0, false
	}
	return v, true
}

// int consumes an integer that fits an int64.
func (d *fastDec) int() (int64, bool) {
	neg := d.lit("-")
	const maxI = 1<<63 - 1
	limit := uint64(maxI)
	if neg {
		limit++
	}
	v, ok := d.uint(limit)
	if !ok {
		return 0, false
	}
	if neg {
		return -int64(v-1) - 1, true
	}
	return int64(v), true
}

// id consumes a quoted ID of 64 lowercase hex digits.
func (d *fastDec) id(id *ID) bool {
	if len(d.s)-d.i < 2+2*len(id) || d.s[d.i] != '"' || d.s[d.i+1+2*len(id)] != '"' {
		return false
	}
	h := d.s[d.i+1 : d.i+1+2*len(id)]
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return false
	}
	d.i += 2 + 2*len(id)
	return true
}

// optUint consumes key and a number if the input continues with key.
func (d *fastDec) optUint(key string, max uint64, v *uint64) bool {
	if !d.lit(key) {
		return true
	}
	var ok bool
	*v, ok = d.uint(max)
	return ok
}

func (d *fastDec) node(n *Node) bool {
	var ok bool
	var s string
	if !d.lit(`{"name":`) {
		return false
	}
	if s, ok = d.str(); !ok {
		return false
	}
	n.Name = Bytes(s)
	if !d.lit(`,"type":`) {
		return false
	}
	if n.Type, ok = d.str(); !ok {
		return false
	}
	var v uint64
	for _, f := range []struct {
		key string
		dst *uint32
	}{{`,"mode":`, &n.Mode}, {`,"uid":`, &n.UID}, {`,"gid":`, &n.GID}} {
		if !d.lit(f.key) {
			return false
		}
		if v, ok = d.uint(1<<32 - 1); !ok {
			return false
		}
		*f.dst = uint32(v)
	}
	if d.lit(`,"user":`) {
		if n.User, ok = d.str(); !ok {
			return false
		}
	}
	if d.lit(`,"group":`) {
		if n.Group, ok = d.str(); !ok {
			return false
		}
	}
	if !d.optUint(`,"size":`, 1<<64-1, &n.Size) || !d.lit(`,"mtime_ns":`) {
		return false
	}
	if n.MTimeNs, ok = d.int(); !ok {
		return false
	}
	if d.lit(`,"atime_ns":`) {
		if n.ATimeNs, ok = d.int(); !ok {
			return false
		}
	}
	if d.lit(`,"ctime_ns":`) {
		if n.CTimeNs, ok = d.int(); !ok {
			return false
		}
	}
	if !d.optUint(`,"inode":`, 1<<64-1, &n.Inode) || !d.optUint(`,"device":`, 1<<64-1, &n.Device) ||
		!d.optUint(`,"links":`, 1<<64-1, &n.Links) || !d.optUint(`,"rdev":`, 1<<64-1, &n.Rdev) {
		return false
	}
	if d.lit(`,"link_target":`) {
		if s, ok = d.str(); !ok {
			return false
		}
		n.LinkTarget = Bytes(s)
	}
	if d.lit(`,"xattrs":[`) {
		for {
			var x Xattr
			if !d.lit(`{"name":`) {
				return false
			}
			if s, ok = d.str(); !ok {
				return false
			}
			x.Name = Bytes(s)
			if !d.lit(`,"value":`) {
				return false
			}
			if s, ok = d.str(); !ok || !d.lit("}") {
				return false
			}
			x.Value = Bytes(s)
			n.Xattrs = append(n.Xattrs, x)
			if d.lit("]") {
				break
			}
			if !d.lit(",") {
				return false
			}
		}
	}
	if d.lit(`,"content":[`) {
		for {
			var id ID
			if !d.id(&id) {
				return false
			}
			n.Content = append(n.Content, id)
			if d.lit("]") {
				break
			}
			if !d.lit(",") {
				return false
			}
		}
	}
	if d.lit(`,"subtree":`) {
		n.Subtree = new(ID)
		if !d.id(n.Subtree) {
			return false
		}
	}
	if d.lit(`,"sparse":true`) {
		n.Sparse = true
	}
	return d.lit("}")
}
