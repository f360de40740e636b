package wire

// Regenerate wirepb/wire.pb.go (needs protoc and protoc-gen-go v1.36.12 on PATH).
//go:generate protoc --go_out=. --go_opt=module=github.com/redpanda-p2p/homenode/node/wire wire.proto
