package jobs

import (
	"reflect"
	"testing"
)

func TestNeedsNetworkForRemoteRepositories(t *testing.T) {
	cases := []struct {
		repos []string
		want  []string
	}{
		{[]string{"/var/backup/a"}, nil},
		{[]string{"/var/backup/a", "sftp://backup@nas:22/srv/a"}, []string{"netcfg"}},
	}
	for _, tc := range cases {
		s := &Service{}
		for _, r := range tc.repos {
			s.jobs = append(s.jobs, &job{cfg: Job{Repository: r}})
		}
		if got := s.Needs(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Needs(%v) = %v, want %v", tc.repos, got, tc.want)
		}
	}
}
