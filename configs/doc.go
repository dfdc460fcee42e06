// Package configs holds hostd's shipped configuration files: the annotated
// example config (also printed by `hostd config example`), the systemd
// unit, and the Grafana dashboard.
package configs
