package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// fileID names a repository file: unkeyed BLAKE3-256 of its stored bytes.
func fileID(b []byte) ID { return crypto.Hash(b) }

// encryptFile seals a metadata file: 1 format byte (0 raw, 1 zstd), then
// the payload.
func (r *Repository) encryptFile(plain []byte) []byte {
	buf := make([]byte, 1, len(plain)/2+64)
	buf[0] = 1
	buf = r.enc.EncodeAll(plain, buf)
	return r.key.Seal(make([]byte, 0, len(buf)+r.key.Overhead()), buf)
}

func decryptFile(k *crypto.Key, dec *zstd.Decoder, sealed []byte) ([]byte, error) {
	b, err := k.Open(nil, sealed)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, errors.New("empty payload")
	}
	switch b[0] {
	case 0:
		return b[1:], nil
	case 1:
		if dec == nil {
			d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
			if err != nil {
				return nil, err
			}
			defer d.Close()
			dec = d
		}
		out, err := dec.DecodeAll(b[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown payload format %d", b[0])
}

// DecryptFile decrypts a metadata file loaded from the backend.
func (r *Repository) DecryptFile(sealed []byte) ([]byte, error) {
	return decryptFile(r.key, r.dec, sealed)
}

// SaveFile encrypts plain and stores it as a file of type t named by the
// BLAKE3 hash of the stored bytes (fileID).
func (r *Repository) SaveFile(ctx context.Context, t backend.FileType, plain []byte) (ID, error) {
	b := r.encryptFile(plain)
	id := fileID(b)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, b); err != nil {
		return id, err
	}
	return id, nil
}

// LoadFile loads, verifies and decrypts a metadata file.
func (r *Repository) LoadFile(ctx context.Context, t backend.FileType, id ID) ([]byte, error) {
	h := backend.Handle{Type: t, Name: id.String()}
	b, ok := r.takeEarly(h)
	if ok {
		return r.openFile(h, b, nil)
	}
	b, err := backend.LoadFile(ctx, r.be, h, backend.FileLimit(t))
	return r.openFile(h, b, err)
}

// openFile checks b, the bytes of file h read with error err, against
// its name and decrypts it.
func (r *Repository) openFile(h backend.Handle, b []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if fileID(b).String() != h.Name {
		return nil, fmt.Errorf("%s: content does not match its name (damaged)", h)
	}
	plain, err := r.DecryptFile(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	return plain, nil
}

// List returns the IDs of files of type t; names that are not IDs are
// skipped.
func (r *Repository) List(ctx context.Context, t backend.FileType) (map[ID]int64, error) {
	out := map[ID]int64{}
	err := r.be.List(ctx, t, func(name string, size int64) error {
		if id, err := crypto.ParseID(name); err == nil {
			out[id] = size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	return out, nil
}
