// Package wirepb is the Go code protoc generates from node/wire/wire.proto
// (regenerate with `make proto`). Use it through node/wire, which adds
// framing and size limits; it knows nothing else.
package wirepb
