//go:build !unix

package main

import "time"

// processCPUTime reports false where getrusage(2) is missing, and
// measureHash then has only wall time.
func processCPUTime() (time.Duration, bool) { return 0, false }
