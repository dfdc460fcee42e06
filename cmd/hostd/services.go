package main

import (
	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/daemon"
	"github.com/hostd/hostd/pkg/audio"
	"github.com/hostd/hostd/pkg/backup/jobs"
	"github.com/hostd/hostd/pkg/containers"
	"github.com/hostd/hostd/pkg/metrics"
	"github.com/hostd/hostd/pkg/netcfg"
	"github.com/hostd/hostd/pkg/proxy"
)

// registrations lists hostd's services in start order: each config section
// and the constructor that builds its service.
func registrations() []daemon.Registration {
	return []daemon.Registration{
		daemon.Register("netcfg", netcfg.DefaultConfig, netcfg.New),
		daemon.Register("metrics", metrics.DefaultConfig, metrics.New),
		daemon.Register("proxy", proxy.DefaultConfig, proxy.New),
		daemon.Register("backup", jobs.DefaultConfig, jobs.New),
		daemon.Register("containers", containers.DefaultConfig, containers.New),
		daemon.Register("audio", audio.DefaultConfig, audio.New),
	}
}

func sectionsOf(regs []daemon.Registration) []config.Section { return daemon.Sections(regs) }
