package client

import (
	"context"
	"testing"
	"time"
)

// TestSendToAChannelJustMade: a channel made a moment ago, whose
// registration round has not reached the node yet, is refused by the node
// as not wanted; Send registers and pushes once more, so the person's
// first message is delivered rather than left for the outbox.
func TestSendToAChannelJustMade(t *testing.T) {
	c := openClient(t, home(t, "phone"))
	if _, err := c.Channels().Create("first"); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, ownedBy(t, c.ID()))
	addNodes(t, c, n)
	connect(t, c)
	c.regMu.Lock() // the background round for the new channel waits here
	if _, err := c.Channels().Create("new"); err != nil {
		c.regMu.Unlock()
		t.Fatal(err)
	}
	type sent struct {
		r   SendResult
		err error
	}
	done := make(chan sent, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := c.Send(ctx, "new", "hello at once")
		done <- sent{r, err}
	}()
	// Long enough for the first push to be refused on most machines;
	// when it is not, the test passes without the retry, never wrongly.
	time.Sleep(time.Second)
	c.regMu.Unlock()
	s := <-done
	if s.err != nil || len(s.r.AckedBy) != 1 {
		t.Fatalf("send to a channel just made: %+v, %v", s.r, s.err)
	}
}
