package node

import "testing"

func FuzzDecodeServeList(f *testing.F) {
	f.Add([]byte(`S{"channels":["00"]}`))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = decodeServeList(b) })
}
