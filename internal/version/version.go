// Package version holds the build's version string, set by the linker
// (see the Makefile's LDFLAGS). It knows nothing else.
package version

// Version is the source revision this binary was built from, "dev" when
// built without the Makefile.
var Version = "dev"
