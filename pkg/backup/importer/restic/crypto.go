package restic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"

	"golang.org/x/crypto/poly1305"
	"golang.org/x/crypto/scrypt"
)

// Sizes of restic's sealed format: IV ‖ AES-256-CTR ciphertext ‖
// Poly1305-AES MAC of the ciphertext.
const (
	ivSize   = aes.BlockSize
	macSize  = poly1305.TagSize
	overhead = ivSize + macSize
)

// errMAC is the error of a payload whose MAC does not verify.
var errMAC = errors.New("ciphertext verification failed (wrong key, or the data was changed)")

// macKey is restic's Poly1305-AES key: k keys AES, which encrypts the
// nonce into the second half of the one-time key; r is the first half.
type macKey struct {
	k [16]byte
	r [16]byte
}

// key is a restic master key (or a key derived from a password).
type key struct {
	macKey  macKey
	encrypt [32]byte
	block   cipher.Block // AES-256 of encrypt
	macAES  cipher.Block // AES-128 of mac.k
}

// poly1305KeyMask clamps r as restic and the Poly1305-AES paper do.
var poly1305KeyMask = [16]byte{0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f}

func newKey(encrypt, macK, macR []byte) (*key, error) {
	if len(encrypt) != 32 || len(macK) != 16 || len(macR) != 16 {
		return nil, fmt.Errorf("key of %d+%d+%d bytes, want 32+16+16", len(encrypt), len(macK), len(macR))
	}
	k := &key{}
	copy(k.encrypt[:], encrypt)
	copy(k.macKey.k[:], macK)
	copy(k.macKey.r[:], macR)
	for i := range k.macKey.r {
		k.macKey.r[i] &= poly1305KeyMask[i]
	}
	var err error
	if k.block, err = aes.NewCipher(k.encrypt[:]); err != nil {
		return nil, err
	}
	if k.macAES, err = aes.NewCipher(k.macKey.k[:]); err != nil {
		return nil, err
	}
	return k, nil
}

// mac computes the Poly1305-AES tag of msg under nonce.
func (k *key) mac(nonce, msg []byte) [macSize]byte {
	var otk [32]byte
	copy(otk[:16], k.macKey.r[:])
	k.macAES.Encrypt(otk[16:], nonce)
	var out [macSize]byte
	poly1305.Sum(&out, msg, &otk)
	return out
}

// open verifies and decrypts sealed (IV ‖ ciphertext ‖ MAC) into dst
// (reused when large enough) and returns the plaintext. The MAC is
// checked before any byte is decrypted.
func (k *key) open(dst, sealed []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("ciphertext of %d bytes, shorter than its %d-byte envelope", len(sealed), overhead)
	}
	iv := sealed[:ivSize]
	ct := sealed[ivSize : len(sealed)-macSize]
	tag := sealed[len(sealed)-macSize:]
	want := k.mac(iv, ct)
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		return nil, errMAC
	}
	if cap(dst) < len(ct) {
		dst = make([]byte, len(ct))
	}
	dst = dst[:len(ct)]
	cipher.NewCTR(k.block, iv).XORKeyStream(dst, ct)
	return dst, nil
}

// seal encrypts plain with iv (16 bytes); used by tests to build hostile
// repositories.
func (k *key) seal(iv, plain []byte) []byte {
	out := make([]byte, ivSize+len(plain)+macSize)
	copy(out, iv)
	cipher.NewCTR(k.block, iv).XORKeyStream(out[ivSize:], plain)
	tag := k.mac(iv, out[ivSize:ivSize+len(plain)])
	copy(out[ivSize+len(plain):], tag[:])
	return out
}

// Bounds of the scrypt parameters of a key file, checked before any
// derivation: a key file is read before anything authenticates it. restic
// writes N=2^15, r=8, p=1..4 by default and calibrates to at most 60 MiB
// and half a second; these allow four times the memory and 16 times the
// work of the default.
const (
	maxScryptN      = 1 << 20
	maxScryptR      = 64
	maxScryptP      = 64
	maxScryptMemory = 256 << 20 // 128·N·r bytes
	maxScryptWork   = 1 << 24   // N·r·p
	minSaltLen      = 16
	maxSaltLen      = 256
)

// scryptParams are a key file's KDF parameters.
type scryptParams struct {
	N, R, P int
	Salt    []byte
}

// check refuses parameters out of the bounds above.
func (p scryptParams) check() error {
	switch {
	case p.N < 2 || p.N > maxScryptN || p.N&(p.N-1) != 0:
		return fmt.Errorf("scrypt N=%d: want a power of two in 2..%d", p.N, maxScryptN)
	case p.R < 1 || p.R > maxScryptR:
		return fmt.Errorf("scrypt r=%d: want 1..%d", p.R, maxScryptR)
	case p.P < 1 || p.P > maxScryptP:
		return fmt.Errorf("scrypt p=%d: want 1..%d", p.P, maxScryptP)
	case int64(128)*int64(p.N)*int64(p.R) > maxScryptMemory:
		return fmt.Errorf("scrypt N=%d r=%d needs %d MiB, at most %d", p.N, p.R, 128*int64(p.N)*int64(p.R)>>20, maxScryptMemory>>20)
	case int64(p.N)*int64(p.R)*int64(p.P) > maxScryptWork:
		return fmt.Errorf("scrypt N=%d r=%d p=%d: more work than %d", p.N, p.R, p.P, maxScryptWork)
	case len(p.Salt) < minSaltLen || len(p.Salt) > maxSaltLen:
		return fmt.Errorf("scrypt salt of %d bytes: want %d..%d", len(p.Salt), minSaltLen, maxSaltLen)
	}
	return nil
}

// cost orders key files cheapest first.
func (p scryptParams) cost() int64 { return int64(p.N) * int64(p.R) * int64(p.P) }

// derive computes the key a password gives under p (checked first).
func (p scryptParams) derive(password []byte) (*key, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	b, err := scrypt.Key(password, p.Salt, p.N, p.R, p.P, 64)
	if err != nil {
		return nil, err
	}
	return newKey(b[:32], b[32:48], b[48:64])
}
