package repository

// decodeIndexFast parses b if it is an index file exactly as EncodeIndex
// writes it (no white space, fields in struct order, IDs in lowercase
// hex, numbers in their shortest form, compressed only when true): what
// json.Unmarshal would give, several times faster (Open decodes every
// index file before anything else can start). Anything else, or anything
// it is not sure of, returns ok false, and encoding/json decides. A fuzz
// test holds it to json.Unmarshal's result on every input it accepts.
func decodeIndexFast(b []byte) (f indexFile, ok bool) {
	d := fastDec{s: string(b)}
	if !d.lit(`{"version":`) {
		return f, false
	}
	v, ok := d.uint(1<<31 - 1)
	if !ok || !d.lit(`,"packs":`) {
		return f, false
	}
	f.Version = int(v)
	switch {
	case d.lit("null"):
	case d.lit("[]"):
		f.Packs = []indexFilePack{}
	case d.lit("["):
		for {
			var p indexFilePack
			if !d.lit(`{"id":`) || !d.id(&p.ID) || !d.lit(`,"blobs":`) {
				return f, false
			}
			if p.Blobs, ok = d.indexBlobs(); !ok || !d.lit("}") {
				return f, false
			}
			f.Packs = append(f.Packs, p)
			if d.lit(",") {
				continue
			}
			if d.lit("]") {
				break
			}
			return f, false
		}
	default:
		return f, false
	}
	if !d.lit("}") || d.i != len(d.s) {
		return f, false
	}
	return f, true
}

// indexBlobs consumes the blobs of one pack: null or a list.
func (d *fastDec) indexBlobs() ([]indexFileBlob, bool) {
	if d.lit("null") {
		return nil, true
	}
	if d.lit("[]") {
		return []indexFileBlob{}, true
	}
	if !d.lit("[") {
		return nil, false
	}
	var bs []indexFileBlob
	for {
		var b indexFileBlob
		if !d.indexBlob(&b) {
			return nil, false
		}
		bs = append(bs, b)
		if d.lit(",") {
			continue
		}
		if d.lit("]") {
			return bs, true
		}
		return nil, false
	}
}

func (d *fastDec) indexBlob(b *indexFileBlob) bool {
	if !d.lit(`{"id":`) || !d.id(&b.ID) || !d.lit(`,"type":`) {
		return false
	}
	t, ok := d.uint(255)
	if !ok {
		return false
	}
	b.Type = BlobType(t)
	for _, f := range []struct {
		key string
		dst *uint32
	}{{`,"offset":`, &b.Offset}, {`,"length":`, &b.Length}, {`,"raw_length":`, &b.RawLength}} {
		if !d.lit(f.key) {
			return false
		}
		v, ok := d.uint(1<<32 - 1)
		if !ok {
			return false
		}
		*f.dst = uint32(v)
	}
	b.Compressed = d.lit(`,"compressed":true`)
	for _, f := range []struct {
		key string
		dst *uint32
	}{{`,"inner":`, &b.Inner}, {`,"segment_raw":`, &b.SegmentRaw}} {
		var v uint64
		if !d.optUint(f.key, 1<<32-1, &v) {
			return false
		}
		*f.dst = uint32(v)
	}
	return d.lit("}")
}
