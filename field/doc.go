// Package field is the field-scenario suite: the network a family and its
// friends build, tried as they would build it, with the real homenode and
// redpanda binaries in separate processes (internal/fieldkit), each node
// with its own data directory and ports on loopback, each person's client
// with its own home. Owners pair from the status page's QR code; friends
// share channels by key string, invitation, hop ticket and device link,
// with no node address typed anywhere; nodes are stopped and killed while
// the apps run.
//
// It is part of `make test`; alone: `make field` or `go test ./field/`.
// With -v it prints what it measured (how long two fresh nodes take to
// find each other, a post to reach the other home's app, an app to hear
// again after its node restarts, also after SIGKILL while the apps are
// idle); FIELD_RUNS=10 repeats each measured step ten times for a median
// and a worst case, and FIELD_DOWN=35s keeps each stopped node down that
// long before it starts again. It has no code of its own, and knows the
// binaries only from the outside.
package field
