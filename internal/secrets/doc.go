// Package secrets resolves secret references in hostd's config: values kept
// outside the config file in a SOPS-encrypted YAML/JSON file, a plain file
// (sops-nix /run/secrets/...), a systemd credential, or an environment
// variable.
//
// It owns the reference syntax and the lookup. A Ref prints as the
// reference, never as the value, so it is safe in logs, status output and
// `config show`. Values are returned only by Resolve.
package secrets
