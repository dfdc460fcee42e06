package daemon

import (
	"fmt"

	"github.com/hostd/hostd/internal/config"
	"github.com/hostd/hostd/internal/service"
)

// Registration ties a service's config section to its constructor.
type Registration struct {
	config.Section
	// Build constructs the service from a pointer to its config struct.
	Build func(env service.Env, cfg any) (service.Service, error)
}

// Register makes a Registration from a service package's DefaultConfig and
// New.
func Register[C any, S service.Service](name string, def func() C, build func(service.Env, C) (S, error)) Registration {
	return Registration{
		Section: config.Section{Name: name, Default: func() any { c := def(); return &c }},
		Build: func(env service.Env, cfg any) (service.Service, error) {
			c, ok := cfg.(*C)
			if !ok {
				return nil, fmt.Errorf("internal: config of %s has type %T", name, cfg)
			}
			return build(env, *c)
		},
	}
}

// Sections returns the config sections of regs.
func Sections(regs []Registration) []config.Section {
	out := make([]config.Section, len(regs))
	for i, r := range regs {
		out[i] = r.Section
	}
	return out
}
