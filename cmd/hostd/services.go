package main

import (
	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/daemon"
)

// registrations lists hostd's services in start order: each config section
// and the constructor that builds its service.
func registrations() []daemon.Registration {
	return []daemon.Registration{}
}

func sectionsOf(regs []daemon.Registration) []config.Section { return daemon.Sections(regs) }
