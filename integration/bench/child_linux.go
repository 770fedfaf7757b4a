package main

import (
	"os/exec"
	"syscall"
)

// dieWithBench makes the kernel kill cmd when the bench exits, however it
// exits: a bench that stopped on an error (os.Exit skips deferred stops)
// left its MinIO running on the data directory the next run starts a
// second MinIO on, and two servers on one directory answer uploads with
// errors (IncompleteBody).
func dieWithBench(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
