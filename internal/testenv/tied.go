package testenv

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// startTied starts cmd, a program the harness runs for the length of a
// test (dnsmasq, Prometheus, sshd, dockerd, a container), so that the
// kernel kills it (SIGKILL) when the test binary dies, however it dies:
// the panic of `go test -timeout`, a SIGKILL, a crash. Without it, those
// programs outlived the test run that started them, with their ports,
// mounts and memory.
//
// Linux ties PR_SET_PDEATHSIG to the thread that forked the child, not to
// the process: a child forked from an ordinary goroutine is killed as soon
// as the Go runtime retires that thread, which it does when a goroutine
// exits while locked to it (what code entering a network namespace does
// to throw the thread away). So every tied child is forked from one
// thread that is kept for that and never retired (tiedStarter).
func startTied(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	tiedStarter() <- startReq{cmd: cmd, done: done}
	return <-done
}

type startReq struct {
	cmd  *exec.Cmd
	done chan<- error
}

// tiedStarter returns the requests channel of the goroutine that forks
// every tied child, started on first use. It stays locked to its thread
// for the life of the test binary: set once, never changed.
var tiedStarter = sync.OnceValue(func() chan<- startReq {
	reqs := make(chan startReq)
	go func() {
		runtime.LockOSThread() // never unlocked: the parent thread of every tied child
		for r := range reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return reqs
})
