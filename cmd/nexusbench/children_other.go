//go:build !linux

package main

import "os/exec"

// setParentDeathSignal does nothing outside Linux, which alone has a
// parent-death signal; there the deferred stopAll and the context's
// cancellation stop the children.
func setParentDeathSignal(*exec.Cmd) {}
