package jobs_test

import (
	"fmt"

	"github.com/hostd/hostd/internal/confkit"
	"github.com/hostd/hostd/pkg/backup/jobs"
)

// The seed's single-job shorthand: a top-level repository and paths make
// a job named "default". Validate reports every problem with its key.
func ExampleConfig_Validate() {
	cfg := jobs.DefaultConfig()
	cfg.Enable = true
	cfg.Repository = "/var/backup/nixos"
	cfg.Paths = []string{"/etc", "/nonexistent/home"}
	cfg.Schedule = "Mon..Fri 25:00"
	cfg.Password = "cred:backup-passphrase"

	v := confkit.NewValidator(jobs.Name)
	cfg.Validate(v)
	for _, e := range v.Errors() {
		fmt.Printf("%s: %s\n", e.Path, e.Msg)
	}
	// Output:
	// backup.paths[1]: path "/nonexistent/home" does not exist
	// backup.schedule: invalid calendar expression "Mon..Fri 25:00": hour 25 out of range 0..23
}
