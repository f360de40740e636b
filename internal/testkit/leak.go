package testkit

import (
	"testing"

	"go.uber.org/goleak"
)

// libp2pIgnores are the goroutines libp2p starts once per process and
// never stops, whatever the test closes: they are not the test's leaks.
// Each is named with why.
var libp2pIgnores = []goleak.Option{}

// VerifyTestMain runs a package's tests, then fails the run if any
// goroutine they started is still there (after goleak's retries, which
// give Close's stragglers time to end): the docs promise that Close
// leaves nothing behind. Call it from TestMain.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, append(append([]goleak.Option{}, libp2pIgnores...), opts...)...)
}
