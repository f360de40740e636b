//go:build !unix

package peersync

import "time"

// processCPU is not measured here: the cpu-µs/msg metrics read zero.
func processCPU() time.Duration { return 0 }
