//go:build tools

// Package tools pins the versions of the code generators the build runs
// (`make mobile`, `make aar`, `make xcframework`) in go.mod, so that every
// machine generates the same bindings. It is never compiled.
package tools

import (
	_ "golang.org/x/mobile/bind"
	_ "golang.org/x/mobile/cmd/gobind"
	_ "golang.org/x/mobile/cmd/gomobile"
)
