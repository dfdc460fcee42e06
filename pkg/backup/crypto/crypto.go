package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	"lukechampine.com/blake3/guts"
)

// Sizes of the primitives.
const (
	KeySize = 32
	IDSize  = 32
	// Overhead is the most any cipher adds in Seal (XChaCha20-Poly1305:
	// 24-byte nonce and 16-byte tag); Key.Overhead is the exact figure.
	Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	// MinOverhead is the least any cipher adds (AES-256-GCM: 12-byte
	// nonce and 16-byte tag).
	MinOverhead = 12 + 16
)

// Cipher names the AEAD of a master key.
type Cipher string

// Ciphers. A key without a cipher (written before AES-256-GCM was the
// default) is XChaCha20-Poly1305.
const (
	XChaCha20Poly1305 Cipher = "xchacha20-poly1305"
	AES256GCM         Cipher = "aes-256-gcm"
	// DefaultCipher is used for new repositories: AES-256-GCM runs in
	// hardware (AES-NI, PCLMULQDQ) on the machines hostd targets.
	DefaultCipher = AES256GCM
)

// ErrUnauthenticated is returned when a ciphertext fails authentication:
// the data was changed, truncated or encrypted with another key.
var ErrUnauthenticated = errors.New("ciphertext verification failed")

// ID names a blob (keyed BLAKE3 of its plaintext) or a repository file.
type ID [IDSize]byte

// String returns the lowercase hex form of id.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 8 hex digits of id.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is all zero.
func (id ID) IsNull() bool { return id == ID{} }

// MarshalText encodes id as hex.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex id.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID decodes a 64-digit hex id.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid id %q: want %d hex digits", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// RandomID returns a random ID, the ID of a new repository.
func RandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return id
}

// Key is a repository master key. It is created once by init, stored only
// wrapped by passphrase-derived keys, and never changes for a repository.
type Key struct {
	Cipher  Cipher        // AEAD of every blob and file
	Encrypt [KeySize]byte // key of Cipher
	IDKey   [KeySize]byte // key of the keyed BLAKE3 hash naming blobs
	Chunker [KeySize]byte // seed of the chunker's gear table

	aead    aeadCipher
	idWords [8]uint32 // IDKey as BLAKE3 key words
}

type aeadCipher = cipher.AEAD

// NewRandomKeyFor generates a fresh master key for cipher c.
func NewRandomKeyFor(c Cipher) (*Key, error) {
	k := &Key{Cipher: c}
	for _, b := range [][]byte{k.Encrypt[:], k.IDKey[:], k.Chunker[:]} {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("generate master key: %w", err)
		}
	}
	if err := k.init(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Key) init() error {
	var a aeadCipher
	var err error
	switch k.Cipher {
	case XChaCha20Poly1305:
		a, err = chacha20poly1305.NewX(k.Encrypt[:])
	case AES256GCM:
		var b cipher.Block
		if b, err = aes.NewCipher(k.Encrypt[:]); err == nil {
			a, err = cipher.NewGCM(b)
		}
	default:
		err = fmt.Errorf("unknown cipher %q", k.Cipher)
	}
	if err != nil {
		return fmt.Errorf("init cipher: %w", err)
	}
	k.aead = a
	k.idWords = keyWords(&k.IDKey)
	return nil
}

type keyJSON struct {
	Cipher  Cipher `json:"cipher,omitempty"`
	Encrypt []byte `json:"encrypt"`
	IDKey   []byte `json:"id_key"`
	Chunker []byte `json:"chunker"`
}

// MarshalJSON encodes the key material; only ever stored encrypted.
func (k *Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(keyJSON{k.Cipher, k.Encrypt[:], k.IDKey[:], k.Chunker[:]})
}

// UnmarshalJSON decodes key material written by MarshalJSON.
func (k *Key) UnmarshalJSON(b []byte) error {
	var j keyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode master key: %w", err)
	}
	if len(j.Encrypt) != KeySize || len(j.IDKey) != KeySize || len(j.Chunker) != KeySize {
		return errors.New("decode master key: wrong key length")
	}
	k.Cipher = j.Cipher
	if k.Cipher == "" {
		k.Cipher = XChaCha20Poly1305
	}
	copy(k.Encrypt[:], j.Encrypt)
	copy(k.IDKey[:], j.IDKey)
	copy(k.Chunker[:], j.Chunker)
	return k.init()
}

// Seal appends nonce || ciphertext || tag of plaintext to dst.
func (k *Key) Seal(dst, plaintext []byte) []byte {
	return sealWith(k.aead, dst, plaintext)
}

// Open authenticates and decrypts a Seal output, appending the plaintext
// to dst.
func (k *Key) Open(dst, sealed []byte) ([]byte, error) {
	return openWith(k.aead, dst, sealed)
}

// Overhead returns how many bytes Seal adds: nonce and tag.
func (k *Key) Overhead() int { return k.aead.NonceSize() + k.aead.Overhead() }

// ID returns the keyed BLAKE3 hash of data. Safe for concurrent use; it
// allocates nothing.
func (k *Key) ID(data []byte) ID {
	return sum(data, &k.idWords, guts.FlagKeyedHash)
}

// sealWith uses a random nonce: 192 bits with XChaCha20-Poly1305, 96
// bits with AES-256-GCM (safe for 2^32 messages per key, far more blobs
// than any repository holds).
func sealWith(a aeadCipher, dst, plaintext []byte) []byte {
	var buf [chacha20poly1305.NonceSizeX]byte
	nonce := buf[:a.NonceSize()]
	if _, err := rand.Read(nonce); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	dst = append(dst, nonce...)
	return a.Seal(dst, nonce, plaintext, nil)
}

func openWith(a aeadCipher, dst, sealed []byte) ([]byte, error) {
	n := a.NonceSize()
	if len(sealed) < n+a.Overhead() {
		return nil, ErrUnauthenticated
	}
	out, err := a.Open(dst, sealed[:n], sealed[n:], nil)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	return out, nil
}

// KDFParams are the argon2id parameters stored in a key file.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	Salt      []byte `json:"salt"`
}

// DefaultKDFParams returns the argon2id parameters used by init and key
// add: two passes over 32 MiB with 2 lanes (above OWASP's
// recommendation of 19 MiB with two passes), and a fresh random salt.
func DefaultKDFParams() KDFParams {
	return NewKDFParams(2, 32*1024, 2)
}

// NewKDFParams returns argon2id parameters with a fresh random salt.
func NewKDFParams(time, memoryKiB uint32, threads uint8) KDFParams {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return KDFParams{Time: time, MemoryKiB: memoryKiB, Threads: threads, Salt: salt}
}

// ErrKDFOutOfRange is wrapped by Validate's errors: the parameters ask for
// more (or less) work than any key hostd accepts.
var ErrKDFOutOfRange = errors.New("KDF parameters out of range")

// Bounds of the argon2id parameters a key file may ask for. A key file
// is read from the repository's storage before anything authenticates
// it, so whoever holds the storage chooses these figures; they bound
// what opening a repository can cost without the password.
//
// hostd writes 32 MiB, two passes, two lanes (DefaultKDFParams), 64
// MiB-passes of work. The limits leave room for eight times that, more
// than RFC 9106's second recommended option (64 MiB, three passes) and
// OWASP's most memory-hungry argon2id setting (46 MiB, one pass), while
// one derivation stays under a quarter of a GiB and well under a second
// on a small machine: MaxKDFWork caps memory times passes, so a key
// file cannot combine the largest memory with the most passes.
const (
	MaxKDFMemoryKiB = 256 << 10 // 256 MiB
	MaxKDFTime      = 64
	MaxKDFThreads   = 64
	// MaxKDFWork bounds MemoryKiB*Time: 512 MiB-passes, 8x the default.
	MaxKDFWork = 512 << 10
	minKDFSalt = 16
	maxKDFSalt = 64
)

// Work returns the cost of a derivation with p: memory in KiB times
// passes. Callers trying several key files try the cheapest first.
func (p KDFParams) Work() uint64 { return uint64(p.MemoryKiB) * uint64(p.Time) }

// Validate rejects parameters that are unsafe or absurd (a key file is
// untrusted input) before any work is done. Its errors wrap
// ErrKDFOutOfRange and read "KDF parameters out of range (...)".
func (p KDFParams) Validate() error {
	var why string
	switch {
	case p.Time < 1 || p.Time > MaxKDFTime:
		why = fmt.Sprintf("argon2id time %d, want 1..%d", p.Time, MaxKDFTime)
	case p.Threads < 1 || p.Threads > MaxKDFThreads:
		why = fmt.Sprintf("argon2id threads %d, want 1..%d", p.Threads, MaxKDFThreads)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		why = fmt.Sprintf("argon2id memory %d KiB, want %d..%d", p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB)
	case p.Work() > MaxKDFWork:
		why = fmt.Sprintf("argon2id memory %d KiB times %d passes over the limit of %d", p.MemoryKiB, p.Time, MaxKDFWork)
	case len(p.Salt) < minKDFSalt || len(p.Salt) > maxKDFSalt:
		why = fmt.Sprintf("argon2id salt of %d bytes, want %d..%d", len(p.Salt), minKDFSalt, maxKDFSalt)
	default:
		return nil
	}
	return fmt.Errorf("%w (%s)", ErrKDFOutOfRange, why)
}

// WrappingKey derives the key-encryption key from a passphrase.
type WrappingKey struct{ aead aeadCipher }

// DeriveWrappingKey runs argon2id over password with p.
func DeriveWrappingKey(password []byte, p KDFParams) (*WrappingKey, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	// argon2 allocates its memory rounded down to a multiple of
	// 4*threads 1 KiB blocks.
	prepareKDFMemory(int(p.MemoryKiB/(4*uint32(p.Threads))*(4*uint32(p.Threads))) << 10)
	k := argon2.IDKey(password, p.Salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	a, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, fmt.Errorf("init cipher: %w", err)
	}
	return &WrappingKey{aead: a}, nil
}

// Wrap encrypts the master key.
func (w *WrappingKey) Wrap(k *Key) ([]byte, error) {
	b, err := k.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return sealWith(w.aead, nil, b), nil
}

// Unwrap decrypts a master key; ErrUnauthenticated means a wrong passphrase
// (or a damaged key file).
func (w *WrappingKey) Unwrap(sealed []byte) (*Key, error) {
	b, err := openWith(w.aead, nil, sealed)
	if err != nil {
		return nil, err
	}
	k := &Key{}
	if err := k.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return k, nil
}
