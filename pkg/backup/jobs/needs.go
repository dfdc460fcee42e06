package jobs

import (
	"strings"

	"github.com/hostd/hostd/internal/service"
)

var _ service.Dependent = (*Service)(nil)

// Needs implements service.Dependent: jobs that back up to a remote
// repository wait until the network is online.
func (s *Service) Needs() []string {
	for _, j := range s.jobs {
		if strings.Contains(j.cfg.Repository, "://") {
			return []string{"netcfg"}
		}
	}
	return nil
}
