package jobs

import (
	"strings"

	"github.com/hostd/hostd/internal/service"
	"github.com/hostd/hostd/pkg/backup/backend"
)

var _ service.Dependent = (*Service)(nil)

// Needs implements service.Dependent: jobs that back up to a remote
// repository wait until the network is online before the service starts;
// later runs wait again while it is offline (see job.execute).
func (s *Service) Needs() []string {
	for _, j := range s.jobs {
		if isRemote(j.cfg.Repository) {
			return []string{"netcfg"}
		}
	}
	return nil
}

// isRemote reports whether a repository is reached over the network:
// sftp://, s3:, rest: and rclone: (whose remote may be anywhere).
func isRemote(repo string) bool {
	return strings.Contains(repo, "://") || backend.Remote(repo)
}
