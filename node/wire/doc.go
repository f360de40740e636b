// Package wire is redPanda protocol v2 on the wire: the protobuf messages
// (wire.proto, generated into wirepb), length-prefixed framing with a hard
// size cap, and conversion between protobuf and node/channel types.
//
// It must not know about storage, peers or the sync protocol's state: it
// only turns bytes into checked messages and back.
//
// The generated code is committed. Regenerate it from this directory with
//
//	protoc --go_out=. --go_opt=module=github.com/redpanda-p2p/homenode/node/wire wire.proto
//
// (that is `go generate ./node/wire`; it needs protoc and protoc-gen-go
// v1.36.12 on PATH).
package wire
