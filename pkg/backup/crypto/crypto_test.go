package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestSealOpen(t *testing.T) {
	for _, c := range []struct {
		cipher   Cipher
		overhead int
	}{{AES256GCM, MinOverhead}, {XChaCha20Poly1305, Overhead}} {
		t.Run(string(c.cipher), func(t *testing.T) {
			testSealOpen(t, c.cipher, c.overhead)
		})
	}
}

func testSealOpen(t *testing.T, c Cipher, overhead int) {
	t.Helper()
	k, err := NewRandomKeyFor(c)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewRandomKeyFor(c)
	msg := []byte("attack at dawn")
	sealed := k.Seal(nil, msg)
	if len(sealed) != len(msg)+overhead || k.Overhead() != overhead {
		t.Fatalf("sealed length %d, overhead %d", len(sealed), k.Overhead())
	}
	got, err := k.Open(nil, sealed)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %v %q", err, got)
	}
	tests := []struct {
		name   string
		key    *Key
		mutate func([]byte) []byte
	}{
		{"flipped bit", k, func(b []byte) []byte { b[len(b)-20] ^= 1; return b }},
		{"flipped nonce", k, func(b []byte) []byte { b[0] ^= 1; return b }},
		{"truncated", k, func(b []byte) []byte { return b[:len(b)-1] }},
		{"too short", k, func(b []byte) []byte { return b[:10] }},
		{"other key", other, func(b []byte) []byte { return b }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.mutate(append([]byte(nil), sealed...))
			if _, err := tc.key.Open(nil, c); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if k.ID(msg) == other.ID(msg) {
		t.Fatal("keyed IDs equal across keys")
	}
}

func TestWrap(t *testing.T) {
	k, _ := NewRandomKeyFor(DefaultCipher)
	p := NewKDFParams(1, 64, 1)
	w, err := DeriveWrappingKey([]byte("pw"), p)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := w.Wrap(k)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := w.Unwrap(sealed)
	if err != nil || k2.Cipher != k.Cipher || k2.Encrypt != k.Encrypt || k2.IDKey != k.IDKey || k2.Chunker != k.Chunker {
		t.Fatalf("unwrap: %v", err)
	}
	// A master key written before keys named their cipher is
	// XChaCha20-Poly1305.
	old, err := w.Unwrap(sealWith(w.aead, nil, []byte(`{"encrypt":"`+b64(k.Encrypt[:])+`","id_key":"`+b64(k.IDKey[:])+`","chunker":"`+b64(k.Chunker[:])+`"}`)))
	if err != nil || old.Cipher != XChaCha20Poly1305 || old.Overhead() != Overhead {
		t.Fatalf("key without cipher: %v %+v", err, old)
	}
	if _, err := w.Unwrap(sealWith(w.aead, nil, []byte(`{"cipher":"rot13","encrypt":"`+b64(k.Encrypt[:])+`","id_key":"`+b64(k.IDKey[:])+`","chunker":"`+b64(k.Chunker[:])+`"}`))); err == nil {
		t.Fatal("unknown cipher accepted")
	}
	bad, _ := DeriveWrappingKey([]byte("wrong"), p)
	if _, err := bad.Unwrap(sealed); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := DeriveWrappingKey([]byte("pw"), KDFParams{Time: 1, MemoryKiB: 1 << 30, Threads: 1, Salt: p.Salt}); err == nil {
		t.Fatal("absurd memory accepted")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func BenchmarkSeal1MiB(b *testing.B) {
	for _, c := range []Cipher{AES256GCM, XChaCha20Poly1305} {
		b.Run(string(c), func(b *testing.B) {
			k, _ := NewRandomKeyFor(c)
			data := make([]byte, 1<<20)
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, len(data)+Overhead)
			for b.Loop() {
				buf = k.Seal(buf[:0], data)
			}
		})
	}
}

func BenchmarkID1MiB(b *testing.B) {
	k, _ := NewRandomKeyFor(DefaultCipher)
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = k.ID(data)
	}
}

// TestIDKeyedAndReusable checks that ID is BLAKE3 keyed with IDKey (the
// reference vector of the BLAKE3 test suite for an empty input and key
// "whats the Elvish word for friend"), gives the same answer under
// concurrent use, and allocates nothing.
func TestIDKeyedAndReusable(t *testing.T) {
	k := &Key{Cipher: XChaCha20Poly1305}
	copy(k.IDKey[:], "whats the Elvish word for friend")
	if err := k.init(); err != nil {
		t.Fatal(err)
	}
	const empty = "92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26"
	if id := k.ID(nil); hex.EncodeToString(id[:]) != empty {
		got := hex.EncodeToString(id[:])
		t.Fatalf("keyed BLAKE3 of empty input = %s, want %s", got, empty)
	}
	data := make([]byte, 100<<10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	want := make([]ID, 64)
	for i := range want {
		want[i] = k.ID(data[:i*1500])
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 200 {
				i := r % len(want)
				if got := k.ID(data[:i*1500]); got != want[i] {
					t.Errorf("ID of %d bytes changed under concurrent reuse", i*1500)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := testing.AllocsPerRun(100, func() { k.ID(data[:5000]) }); n > 0 {
		t.Errorf("ID allocates %.1f times per call", n)
	}
}

// Parameters a key file read from untrusted storage may ask for: the
// default and up to eight times its work pass; anything costlier (the
// planted key file of 4 GiB and 100 passes the old bounds accepted) is
// refused before any work, with ErrKDFOutOfRange.
func TestKDFBounds(t *testing.T) {
	salt := make([]byte, 16)
	tests := []struct {
		name    string
		p       KDFParams
		wantErr string
	}{
		{"default", DefaultKDFParams(), ""},
		{"test params", NewKDFParams(1, 64, 1), ""},
		{"largest memory", KDFParams{Time: 2, MemoryKiB: MaxKDFMemoryKiB, Threads: 4, Salt: salt}, ""},
		{"most passes", KDFParams{Time: MaxKDFTime, MemoryKiB: 8 << 10, Threads: 1, Salt: salt}, ""},
		{"bomb", KDFParams{Time: 100, MemoryKiB: 4 << 20, Threads: 4, Salt: salt}, "argon2id time 100, want 1..64"},
		{"4 GiB", KDFParams{Time: 1, MemoryKiB: 4 << 20, Threads: 4, Salt: salt}, "argon2id memory 4194304 KiB, want 32..262144"},
		{"work", KDFParams{Time: 3, MemoryKiB: MaxKDFMemoryKiB, Threads: 4, Salt: salt}, "times 3 passes over the limit"},
		{"no passes", KDFParams{Time: 0, MemoryKiB: 64, Threads: 1, Salt: salt}, "argon2id time 0"},
		{"no threads", KDFParams{Time: 1, MemoryKiB: 64, Threads: 0, Salt: salt}, "argon2id threads 0"},
		{"255 threads", KDFParams{Time: 1, MemoryKiB: 1 << 16, Threads: 255, Salt: salt}, "argon2id threads 255"},
		{"memory below 8 per thread", KDFParams{Time: 1, MemoryKiB: 8, Threads: 2, Salt: salt}, "argon2id memory 8 KiB, want 16.."},
		{"short salt", KDFParams{Time: 1, MemoryKiB: 64, Threads: 1, Salt: salt[:4]}, "salt of 4 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrKDFOutOfRange) || !strings.HasPrefix(err.Error(), "KDF parameters out of range (argon2id ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v, want ErrKDFOutOfRange with %q", err, tc.wantErr)
			}
			if _, err := DeriveWrappingKey([]byte("pw"), tc.p); !errors.Is(err, ErrKDFOutOfRange) {
				t.Fatalf("derived with %+v: %v", tc.p, err)
			}
		})
	}
}
