// Package config loads hostd's one YAML config file: the hostd core
// section, the secrets section, and one section per service. It fills in
// defaults, decodes strictly, runs every section's validation plus the
// checks that cross sections (two listeners on one port), and reports all
// problems at once as file:line:col: path: message.
//
// It does not know the services' config types: the composition root
// (cmd/hostd via internal/daemon) hands it the list of sections.
package config
