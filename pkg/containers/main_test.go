package containers

import (
	"fmt"
	"os"
	"testing"

	"github.com/hostd/hostd/internal/testenv"
)

// docker is the one dockerd the package's tests share, its data root on a
// tmpfs for disk-pressure tests. Tests run one after another, start from
// an empty engine and leave it empty.
var docker = testenv.SharedDocker{Options: testenv.DockerOptions{DataRootSize: 384 << 20}}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := docker.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "stop shared dockerd:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
