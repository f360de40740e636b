package client

import (
	"testing"
	"time"
)

// FuzzDecoders: block, block chunk, device link and master-channel
// control decoders take any bytes without panicking.
func FuzzDecoders(f *testing.F) {
	f.Add([]byte("RPB1"), "rpdev1")
	f.Add([]byte{'D', '{', '}'}, encodeLink(make([]byte, 32), make([]byte, 32), time.Unix(1<<40, 0), nil))
	f.Fuzz(func(t *testing.T, b []byte, s string) {
		_, _ = decodeBlock(b)
		_, _ = decodeDeviceControl(b)
		_, _, _ = decodeLink(s, time.Unix(0, 0))
	})
}
