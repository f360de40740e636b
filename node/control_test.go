package node

import (
	"fmt"
	"testing"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/control"
)

func TestControlSet(t *testing.T) {
	id := func(b byte) channel.ID {
		var c channel.ID
		c[0] = b
		return c
	}
	body := func(at int64, ids ...channel.ID) []byte {
		s := `S{"channels":[],"control":[`
		for i, c := range ids {
			if i > 0 {
				s += ","
			}
			s += fmt.Sprintf("%q", c.String())
		}
		return []byte(s + fmt.Sprintf(`],"at":%d}`, at))
	}
	list := func(b []byte) control.ServeList {
		l, err := control.DecodeServeList(b)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	var n Node
	n.control.follow(id(1))
	n.control.update(list(body(10, id(2), id(3))))
	n.control.update(list(body(5, id(4))))                              // older: ignored
	n.control.update(list([]byte(`S{"control":["nonsense"],"at":20}`))) // a bad ID is skipped
	got := n.ControlChannels()
	if len(got) != 1 || !got[id(1)] {
		t.Fatalf("after a newer list with only a bad ID: %v", got)
	}
	n.control.update(list(body(30, id(2))))
	got = n.ControlChannels()
	if len(got) != 2 || !got[id(1)] || !got[id(2)] {
		t.Fatalf("control channels %v, want the node channel and the latest list", got)
	}
	n.control.forget()
	if got := n.ControlChannels(); len(got) != 0 {
		t.Fatalf("after forget: %v", got)
	}
}
