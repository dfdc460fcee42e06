package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RemoveKey deletes the key file whose name starts with prefix. It
// refuses the key in use (the passphrase that opened the repository:
// use ChangePassword to replace it) and the last key, without which the
// repository could never be opened again. It returns the full name.
func (r *Repository) RemoveKey(ctx context.Context, prefix string) (string, error) {
	if prefix == "" {
		return "", errors.New("remove key: empty key name")
	}
	keys, err := r.repo.Keys(ctx)
	if err != nil {
		return "", fmt.Errorf("remove key: list keys: %w", err)
	}
	var found []string
	for _, k := range keys {
		if strings.HasPrefix(k, strings.ToLower(prefix)) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("remove key %s: no such key", prefix)
	case len(found) > 1:
		return "", fmt.Errorf("remove key %s: prefix matches %d keys", prefix, len(found))
	}
	name := found[0]
	if name == r.repo.KeyName() {
		return "", fmt.Errorf("remove key %s: it is the key in use (open the repository with another passphrase to remove it, or replace it with key passwd)", name[:8])
	}
	if len(keys) < 2 {
		return "", fmt.Errorf("remove key %s: it is the last key; the repository could not be opened without it", name[:8])
	}
	if err := r.repo.RemoveKey(ctx, name); err != nil {
		return "", fmt.Errorf("remove key %s: %w", name[:8], err)
	}
	return name, nil
}
