#!/usr/bin/env bash
# Regenerates the SOPS fixtures of FuzzDecryptSOPS with the real sops tool
# (built from its Go module) and a fresh test-only age key:
#   sops-keys.txt  the age identity (a test key; it protects nothing)
#   sops-v2ray.yaml, sops-v2ray.json  encrypted files
set -euo pipefail
cd "$(dirname "$0")"
SOPS_VERSION=v3.13.3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
(cd "$T" && GOBIN="$T" GOFLAGS=-mod=mod go install "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION")
(cd "$T" && GOBIN="$T" GOFLAGS=-mod=mod go install filippo.io/age/cmd/age-keygen@v1.3.2)
"$T/age-keygen" -o sops-keys.txt 2>/dev/null
RCPT=$(grep -o 'age1[0-9a-z]*' sops-keys.txt | head -1)
cat >"$T/v2ray.yaml" <<'YAML'
# fixture: not a real server
v2ray:
  server_address: vpn.example.com
  server_port: 443
  user_id: 6b1a2c1e-8f4e-4c1b-9d0a-5e6f7a8b9c0d
  public_key: E59WjnvZcQMu7tR7_BgyhycuEdBS-CtKxfImRCdAvFM
  short_id: 0123456789abcdef
  mirrors: [a.example.com, b.example.com]
  enabled: true
  note_unencrypted: kept in clear
YAML
printf '{"v2ray": {"server_address": "vpn.example.com", "server_port": 443, "flags": [1, 2.5, false]}}\n' >"$T/v2ray.json"
(cd "$T" && HOME="$T" ./sops encrypt --age "$RCPT" --input-type yaml --output-type yaml v2ray.yaml) >sops-v2ray.yaml
(cd "$T" && HOME="$T" ./sops encrypt --age "$RCPT" --input-type json --output-type json v2ray.json) >sops-v2ray.json
