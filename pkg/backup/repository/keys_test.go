package repository

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hostd/hostd/pkg/backup/backend"
	"github.com/hostd/hostd/pkg/backup/crypto"
)

// RemoveKey refuses the key that opened the repository and removes any
// other, after which that key's password no longer opens it.
func TestRemoveKey(t *testing.T) {
	ctx := context.Background()
	r, dir := newTestRepo(t)
	inUse := r.KeyName()
	other, err := r.AddKey(ctx, []byte("pw2"), crypto.NewKDFParams(1, 64, 1))
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := r.Keys(ctx); err != nil || len(keys) != 2 || !slices.Contains(keys, inUse) || !slices.Contains(keys, other) {
		t.Fatalf("keys %v (%v), want %s and %s", keys, err, inUse, other)
	}

	if err := r.RemoveKey(ctx, inUse); err == nil {
		t.Fatal("removed the key in use")
	}
	if err := r.RemoveKey(ctx, other); err != nil {
		t.Fatalf("remove key %s: %v", other, err)
	}
	if keys, err := r.Keys(ctx); err != nil || !slices.Equal(keys, []string{inUse}) {
		t.Fatalf("keys after removal %v (%v), want [%s]", keys, err, inUse)
	}

	be := backend.NewLocal(dir)
	if _, err := Open(ctx, be, []byte("pw2"), Options{}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("open with the removed key's password: %v, want ErrWrongPassword", err)
	}
	r2, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatalf("open with the remaining key: %v", err)
	}
	_ = r2.Close()
}
