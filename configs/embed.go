// Package configs holds hostd's shipped configuration files: the annotated
// example config (also printed by `hostd config example`), the systemd
// unit, and the Grafana dashboard.
package configs

import _ "embed"

// Example is hostd.example.yaml: every option with a comment.
//
//go:embed hostd.example.yaml
var Example []byte
