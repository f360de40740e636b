package attack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	"google.golang.org/protobuf/proto"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/discovery"
	"github.com/redpanda-p2p/homenode/node/peersync"
	"github.com/redpanda-p2p/homenode/node/routing"
	"github.com/redpanda-p2p/homenode/node/store"
	"github.com/redpanda-p2p/homenode/node/wire"
	"github.com/redpanda-p2p/homenode/node/wire/wirepb"
)

// kadProtocol is the DHT protocol under the node's prefix.
const kadProtocol = discovery.ProtocolPrefix + "/kad/1.0.0"

func randomIDs(n int) [][]byte {
	out := make([][]byte, n)
	buf := make([]byte, 32*n)
	_, _ = rand.Read(buf)
	for i := range out {
		out[i] = buf[32*i : 32*i+32]
	}
	return out
}

// drain reads a stream until it ends and then closes ended.
func drain(st network.Stream, ended chan<- struct{}) {
	_, _ = io.Copy(io.Discard, st)
	close(ended)
}

// SyncWants is item 1: strangers open sync sessions and declare tens of
// thousands of wanted channels each, and hold them.
var SyncWants = Attack{Name: "sync-wants", Item: "1", Run: func(ctx context.Context, env *Env, r *Report) {
	sc := env.Scale
	r.Did = fmt.Sprintf("%d unregistered peers on %d source addresses each open a sync session, say Hello and Want %d channels, hold %s",
		sc.WantPeers, sc.WantPeers, sc.WantsPerPeer, sc.Hold)
	hs, node, err := attackers(ctx, 0, sc.WantPeers, env.T.Addr)
	if err != nil {
		r.Fail("attackers: %v", err)
		return
	}
	defer closeAll(hs)
	var open atomic.Int32
	var wg sync.WaitGroup
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := h.NewStream(ctx, node, peersync.ProtocolID)
			if err != nil {
				return
			}
			ended := make(chan struct{})
			go drain(st, ended)
			left := sc.WantsPerPeer
			first := min(left, wire.MaxIDsPerFrame)
			f := &wirepb.Frame{Kind: &wirepb.Frame_Hello{Hello: &wirepb.Hello{Agent: "rpattack", Want: randomIDs(first)}}}
			for left > 0 {
				b, err := wire.AppendMsgFrame(nil, f)
				if err != nil {
					return
				}
				if _, err := st.Write(b); err != nil {
					return
				}
				left -= len(f.GetHello().GetWant()) + len(f.GetWant().GetAdd())
				f = &wirepb.Frame{Kind: &wirepb.Frame_Want{Want: &wirepb.Want{Add: randomIDs(min(left, wire.MaxIDsPerFrame))}}}
			}
			open.Add(1)
			select {
			case <-ended:
				open.Add(-1)
			case <-ctx.Done():
			case <-time.After(sc.Hold):
			}
		}()
	}
	wg.Wait()
	r.Note("%d of %d sessions still open at the end of the hold", open.Load(), len(hs))
}}

// SilentSync is item 1's other half: sync streams that never say Hello,
// from many peers on one address.
var SilentSync = Attack{Name: "sync-silent", Item: "1", Run: func(ctx context.Context, env *Env, r *Report) {
	n := env.Scale.SilentStreams
	r.Did = fmt.Sprintf("%d peers from one address open a sync stream each and never say Hello", n)
	var hs []host.Host
	defer func() { closeAll(hs) }()
	var node peer.ID
	for range n {
		h, err := newAttacker(1000) // all on one source address
		if err != nil {
			r.Fail("attacker: %v", err)
			return
		}
		hs = append(hs, h)
		if node, err = dialNode(ctx, h, env.T.Addr); err != nil {
			r.Fail("attacker dial: %v", err)
			return
		}
	}
	start := time.Now()
	var endedN atomic.Int32
	var last atomic.Int64
	var wg sync.WaitGroup
	for _, h := range hs {
		st, err := h.NewStream(ctx, node, peersync.ProtocolID)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ended := make(chan struct{})
			go drain(st, ended)
			select {
			case <-ended:
				endedN.Add(1)
				last.Store(int64(time.Since(start)))
			case <-ctx.Done():
			case <-time.After(45 * time.Second):
				_ = st.Reset()
			}
		}()
	}
	wg.Wait()
	r.Note("the node ended %d of %d silent streams, the last %s after they opened", endedN.Load(), n, time.Duration(last.Load()).Round(100*time.Millisecond))
	if int(endedN.Load()) < n {
		r.Fail("%d silent sync streams still held after 45 s", n-int(endedN.Load()))
	}
}}

// KadFlood is item 2: one peer sends ADD_PROVIDER messages for random keys
// on one DHT stream as fast as the node takes them.
var KadFlood = Attack{Name: "kad-flood", Item: "2", Run: func(ctx context.Context, env *Env, r *Report) {
	n := env.Scale.KadMessages
	hs, node, err := attackers(ctx, 1100, 1, env.T.Addr)
	if err != nil {
		r.Fail("attacker: %v", err)
		return
	}
	defer closeAll(hs)
	h := hs[0]
	st, err := h.NewStream(ctx, node, kadProtocol)
	if err != nil {
		r.Fail("open %s: %v", kadProtocol, err)
		return
	}
	defer st.Reset()
	w := msgio.NewVarintWriter(st)
	me := kadpb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}})
	start := time.Now()
	deadline := start.Add(3 * env.Scale.Hold)
	sent := 0
	key := make([]byte, 34)
	key[0], key[1] = 0x12, 0x20 // a sha2-256 multihash, as a provider key is
	for sent < n && time.Now().Before(deadline) && ctx.Err() == nil {
		_, _ = rand.Read(key[2:])
		m := &kadpb.Message{Type: kadpb.Message_ADD_PROVIDER, Key: key, ProviderPeers: me}
		b, err := proto.Marshal(m)
		if err != nil {
			r.Fail("marshal: %v", err)
			return
		}
		_ = st.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := w.WriteMsg(b); err != nil {
			r.Note("the node stopped reading after %d messages: %v", sent, err)
			break
		}
		sent++
	}
	el := time.Since(start)
	r.Did = fmt.Sprintf("one peer sent %d ADD_PROVIDER messages for distinct keys on one %s stream in %s (%.0f/s; cap %d or %s)",
		sent, kadProtocol, el.Round(time.Millisecond), float64(sent)/el.Seconds(), n, 3*env.Scale.Hold)
}}

// authzFrame encodes statements as the authz protocol's frame.
func authzFrame(sts []*discovery.Statement) []byte {
	b := make([]byte, 2)
	for _, st := range sts {
		enc, _ := st.MarshalBinary()
		b = append(b, byte(len(enc)))
		b = append(b, enc...)
	}
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b
}

// readAuthzReply reads the node's answer frame and counts its statements.
func readAuthzReply(st network.Stream) (int, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return 0, err
	}
	body := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(st, body); err != nil {
		return 0, err
	}
	n := 0
	for len(body) > 0 {
		l := int(body[0])
		if 1+l > len(body) {
			break
		}
		body = body[1+l:]
		n++
	}
	return n, nil
}

// showStatements runs one authz exchange: it shows sts and returns how
// many statements the node showed back.
func showStatements(ctx context.Context, h host.Host, node peer.ID, sts []*discovery.Statement) (int, error) {
	st, err := h.NewStream(ctx, node, discovery.AuthzProtocol)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write(authzFrame(sts)); err != nil {
		return 0, err
	}
	_ = st.CloseWrite()
	return readAuthzReply(st)
}

// statements signs, for node p, one statement per key valid until until.
func statements(keys []*channel.Key, p peer.ID, until time.Time) ([]*discovery.Statement, error) {
	out := make([]*discovery.Statement, 0, len(keys))
	for _, k := range keys {
		st, err := discovery.IssueStatement(k, p, until)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func newKeys(n int) ([]*channel.Key, error) {
	out := make([]*channel.Key, n)
	for i := range out {
		k, err := channel.NewKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// century is how far the hostile statements reach.
const century = 100 * 365 * 24 * time.Hour

// AuthzFlood is item 9: a stranger shows the node hundreds of thousands of
// valid statements for channels of its own making.
var AuthzFlood = Attack{Name: "authz-flood", Item: "9", Run: func(ctx context.Context, env *Env, r *Report) {
	n := env.Scale.AuthzStatements
	hs, node, err := attackers(ctx, 1200, 4, env.T.Addr)
	if err != nil {
		r.Fail("attackers: %v", err)
		return
	}
	defer closeAll(hs)
	var shown, frames atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per := n / len(hs)
			for done := 0; done < per && ctx.Err() == nil; done += discovery.MaxStatementsPerFrame {
				keys, err := newKeys(min(discovery.MaxStatementsPerFrame, per-done))
				if err != nil {
					return
				}
				sts, err := statements(keys, h.ID(), time.Now().Add(century))
				if err != nil {
					return
				}
				if _, err := showStatements(ctx, h, node, sts); err != nil {
					continue
				}
				shown.Add(int64(len(sts)))
				frames.Add(1)
			}
		}()
	}
	wg.Wait()
	r.Did = fmt.Sprintf("4 strangers showed %d valid century-long statements for channels of their own (%d authz exchanges) in %s",
		shown.Load(), frames.Load(), time.Since(start).Round(time.Millisecond))
}}

// stranger is a peer with a store and a sync service of its own: what a
// hostile super node needs to push messages.
type stranger struct {
	h   host.Host
	db  *store.DB
	svc *peersync.Service
}

func newStranger(ctx context.Context, dir string, i int, addr string) (*stranger, peer.ID, error) {
	h, err := newAttacker(i)
	if err != nil {
		return nil, "", err
	}
	node, err := dialNode(ctx, h, addr)
	if err != nil {
		h.Close()
		return nil, "", err
	}
	db, err := store.Open(filepath.Join(dir, fmt.Sprintf("stranger-%d.db", i)), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		h.Close()
		return nil, "", err
	}
	return &stranger{h: h, db: db, svc: peersync.New(h, db, peersync.Config{Logger: slog.New(slog.DiscardHandler)})}, node, nil
}

func (s *stranger) close() {
	s.svc.Close()
	s.h.Close()
	s.db.Close()
}

// push shows statements for keys, then pushes one 60 KiB message into each
// key's channel and returns how many the node acknowledged.
func (s *stranger) push(ctx context.Context, node peer.ID, keys []*channel.Key) (int, error) {
	sts, err := statements(keys, s.h.ID(), time.Now().Add(century))
	if err != nil {
		return 0, err
	}
	if _, err := showStatements(ctx, s.h, node, sts); err != nil {
		return 0, fmt.Errorf("authz: %w", err)
	}
	author, _ := channel.NewIdentity(rand.Reader)
	body := make([]byte, 60<<10)
	acked := 0
	for _, k := range keys {
		s.svc.Want(k.ID())
		e, err := k.Seal(author, channel.KindText, body, time.Now(), rand.Reader)
		if err != nil {
			return acked, err
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = s.svc.PushTo(pctx, node, e)
		cancel()
		if err == nil {
			acked++
		}
	}
	return acked, nil
}

// HandOver is item 5: a registered friend hands over thousands of
// century-long statements, is revoked, and a never-registered peer then
// presents statements for those channels and pushes messages.
var HandOver = Attack{Name: "hand-over", Item: "5", Run: func(ctx context.Context, env *Env, r *Report) {
	n := env.Scale.HandOver
	hs, node, err := attackers(ctx, 1300, 1, env.T.Addr)
	if err != nil {
		r.Fail("attacker: %v", err)
		return
	}
	defer closeAll(hs)
	h := hs[0]
	id, _ := channel.NewIdentity(rand.Reader)
	chainStr, err := env.Friend.C.Tickets().Issue(id.Public().String(), 30)
	if err != nil {
		r.Fail("ticket: %v", err)
		return
	}
	chain, err := routing.ParseChain(chainStr)
	if err != nil {
		r.Fail("chain: %v", err)
		return
	}
	keys, err := newKeys(n)
	if err != nil {
		r.Fail("keys: %v", err)
		return
	}
	regChs := make([]channel.ID, 0, routing.DefaultMaxChannels)
	for _, k := range keys[:min(len(keys), routing.DefaultMaxChannels)] {
		regChs = append(regChs, k.ID())
	}
	if _, err := routing.Register(ctx, h, node, id, chain, regChs); err != nil {
		r.Fail("the hostile friend could not register: %v", err)
		return
	}
	sts, err := statements(keys, node, time.Now().Add(century))
	if err != nil {
		r.Fail("statements: %v", err)
		return
	}
	accepted := 0
	for len(sts) > 0 {
		b := sts[:min(len(sts), discovery.MaxStatementsPerFrame)]
		sts = sts[len(b):]
		hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		k, _ := discovery.HandOver(hctx, h, node, b)
		cancel()
		accepted += k
	}
	r.Did = fmt.Sprintf("a hop-1 friend registered %d channels and handed over %d century-long statements; then `homenode revoke`, and a never-registered peer showed statements for 16 of those channels and pushed a 60 KiB message into each, before and after a restart",
		len(regChs), n)
	r.Note("the node accepted %d of %d statements (the friend's channel cap is %d)", accepted, n, routing.DefaultMaxChannels)
	if accepted > len(regChs) {
		r.Fail("accepted %d statements from one registrant, more than its %d channels", accepted, len(regChs))
	}
	if out, err := env.T.Admin(ctx, "revoke", id.Public().String()); err != nil {
		r.Fail("revoke: %v", err)
		return
	} else {
		r.Note("revoke: %s", strings.TrimSpace(out))
	}
	probe := keys[:16]
	pushOnce := func(when string, addr string, i int) {
		s, node, err := newStranger(ctx, env.Dir, i, addr)
		if err != nil {
			r.Fail("stranger: %v", err)
			return
		}
		defer s.close()
		acked, err := s.push(ctx, node, probe)
		if err != nil {
			r.Note("stranger %s: %v", when, err)
		}
		r.Note("%s: the node acknowledged %d of %d pushes from a never-registered peer", when, acked, len(probe))
		if acked > 0 {
			r.Fail("%s: a never-registered peer got %d messages acknowledged through handed-over statements", when, acked)
		}
	}
	pushOnce("after revoke", env.T.Addr, 1301)
	if out, err := env.T.Admin(ctx, "channels"); err == nil {
		served := 0
		for _, k := range keys {
			if strings.Contains(out, k.ID().String()) {
				served++
			}
		}
		r.Note("after revoke the node lists %d of the handed-over channels as served", served)
		if served > 0 {
			r.Fail("%d handed-over channels still served after the registrant was revoked", served)
		}
	}
	if err := env.Restart(ctx); err != nil {
		r.Fail("restart: %v", err)
		return
	}
	pushOnce("after restart", env.T.Addr, 1302)
}}
