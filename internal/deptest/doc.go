// Package deptest holds the dependency test: each package doc in this
// module says what the package must not know, and deptest_test.go turns
// those lines into rules over the packages' transitive imports (tailscale's
// tstest/deptest is the model), so that an import that breaks a line fails
// `go test` instead of waiting for a reader. It has no code of its own and
// must not be imported.
package deptest
