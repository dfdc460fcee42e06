// Package secrets resolves secret references in hostd's config: values kept
// outside the config file in a SOPS-encrypted YAML/JSON file, a plain file
// (sops-nix /run/secrets/...), a systemd credential, or an environment
// variable.
//
// It owns the reference syntax and the lookup. A Ref prints as the
// reference, never as the value, so it is safe in logs, status output and
// `config show`. Values are returned only by Resolve.
//
// Everything it reads comes from outside hostd and is bounded: files go
// through internal/safefile (regular files only, opened non-blocking, so
// a FIFO or device is an error at once), a value is at most ValueLimit
// bytes, a SOPS file at most SOPSFileLimit, an age key file at most
// safefile.KeyFileLimit, and an empty value is an error (ErrEmpty) for
// every kind of reference.
package secrets
