package discovery

import (
	"context"
	"strings"
	"sync"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/time/rate"
)

// providersPrefix is where kad-dht's provider manager keeps its records:
// /providers/<base32 key>/<base32 provider peer ID> -> time written.
const providersPrefix = "/providers/"

// providerDatastore is the datastore behind kad-dht's provider records:
// kad-dht keeps every ADD_PROVIDER it is sent, in an unbounded map, so one
// peer on one stream grew a node's heap by half a gigabyte. This one keeps
// at most MaxProviderRecords records, MaxProviderRecordsPerPeer from one
// provider and MaxProvidersPerKey for one key; a record past a bound is
// dropped (kad-dht's GC and reads see it as never written). Records expire
// after ProvideValidity through kad-dht's own GC, which deletes them here.
// kad-dht accepts a record only from the peer it names, so the per-peer
// bound is per sender.
type providerDatastore struct {
	maxTotal, maxPerPeer, maxPerKey int

	mu      sync.RWMutex
	recs    map[string]map[string][]byte // key part -> peer part -> value
	perPeer map[string]int
	n       int
	peak    int // the most keys recs has held since it was last rebuilt
	dropped int64
}

var _ ds.Batching = (*providerDatastore)(nil)

func newProviderDatastore(cfg Config) *providerDatastore {
	return &providerDatastore{
		maxTotal: cfg.MaxProviderRecords, maxPerPeer: cfg.MaxProviderRecordsPerPeer, maxPerKey: cfg.MaxProvidersPerKey,
		recs: map[string]map[string][]byte{}, perPeer: map[string]int{},
	}
}

// split parses a provider record key into its key and peer parts.
func split(k ds.Key) (key, p string, ok bool) {
	s := k.String()
	if !strings.HasPrefix(s, providersPrefix) {
		return "", "", false
	}
	key, p, ok = strings.Cut(s[len(providersPrefix):], "/")
	return key, p, ok && key != "" && p != "" && !strings.Contains(p, "/")
}

// Records returns the provider records held and those dropped at a bound.
func (d *providerDatastore) Records() (held int, dropped int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.n, d.dropped
}

func (d *providerDatastore) Get(_ context.Context, k ds.Key) ([]byte, error) {
	key, p, ok := split(k)
	if !ok {
		return nil, ds.ErrNotFound
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	v, ok := d.recs[key][p]
	if !ok {
		return nil, ds.ErrNotFound
	}
	return v, nil
}

func (d *providerDatastore) Has(ctx context.Context, k ds.Key) (bool, error) {
	_, err := d.Get(ctx, k)
	return err == nil, nil
}

func (d *providerDatastore) GetSize(ctx context.Context, k ds.Key) (int, error) {
	v, err := d.Get(ctx, k)
	if err != nil {
		return -1, err
	}
	return len(v), nil
}

// Put stores a record within the bounds, or drops it. It never fails:
// kad-dht commits records in batches, and one error would throw the
// honest records of the batch away too.
func (d *providerDatastore) Put(_ context.Context, k ds.Key, v []byte) error {
	key, p, ok := split(k)
	if !ok {
		return nil // the provider manager writes nothing else
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	set := d.recs[key]
	if _, had := set[p]; had {
		set[p] = v
		return nil
	}
	if d.n >= d.maxTotal || d.perPeer[p] >= d.maxPerPeer || len(set) >= d.maxPerKey {
		d.dropped++
		return nil
	}
	if set == nil {
		set = map[string][]byte{}
		d.recs[key] = set
		d.peak = max(d.peak, len(d.recs))
	}
	set[p] = v
	d.perPeer[p]++
	d.n++
	return nil
}

func (d *providerDatastore) Delete(_ context.Context, k ds.Key) error {
	key, p, ok := split(k)
	if !ok {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	set := d.recs[key]
	if _, had := set[p]; !had {
		return nil
	}
	delete(set, p)
	if len(set) == 0 {
		delete(d.recs, key)
	}
	if d.perPeer[p]--; d.perPeer[p] <= 0 {
		delete(d.perPeer, p)
	}
	d.n--
	if d.peak >= 1024 && len(d.recs) <= d.peak/4 {
		// A Go map keeps its buckets after deletes: rebuild it so that a
		// flood that expired gives its memory back.
		recs := make(map[string]map[string][]byte, len(d.recs))
		for k, v := range d.recs {
			recs[k] = v
		}
		perPeer := make(map[string]int, len(d.perPeer))
		for k, v := range d.perPeer {
			perPeer[k] = v
		}
		d.recs, d.perPeer, d.peak = recs, perPeer, len(recs)
	}
	return nil
}

// Query answers the provider manager's two queries, the records of one key
// (prefix /providers/<key>) and all records (prefix /providers/), and any
// other through the naive query engine.
func (d *providerDatastore) Query(_ context.Context, q dsq.Query) (dsq.Results, error) {
	d.mu.RLock()
	var es []dsq.Entry
	add := func(key string, set map[string][]byte) {
		for p, v := range set {
			e := dsq.Entry{Key: providersPrefix + key + "/" + p, Size: len(v)}
			if !q.KeysOnly {
				e.Value = v
			}
			es = append(es, e)
		}
	}
	rest := strings.TrimSuffix(strings.TrimPrefix(q.Prefix, providersPrefix), "/")
	if rest != "" && !strings.Contains(rest, "/") && strings.HasPrefix(q.Prefix, providersPrefix) {
		add(rest, d.recs[rest])
	} else {
		for key, set := range d.recs {
			add(key, set)
		}
	}
	d.mu.RUnlock()
	return dsq.NaiveQueryApply(q, dsq.ResultsWithEntries(q, es)), nil
}

func (d *providerDatastore) Sync(context.Context, ds.Key) error { return nil }
func (d *providerDatastore) Close() error                       { return nil }

func (d *providerDatastore) Batch(context.Context) (ds.Batch, error) {
	return &providerBatch{d: d}, nil
}

// providerBatch applies its writes at Commit, in order.
type providerBatch struct {
	d   *providerDatastore
	ops []batchOp
}

type batchOp struct {
	k   ds.Key
	v   []byte
	del bool
}

func (b *providerBatch) Put(_ context.Context, k ds.Key, v []byte) error {
	b.ops = append(b.ops, batchOp{k: k, v: v})
	return nil
}

func (b *providerBatch) Delete(_ context.Context, k ds.Key) error {
	b.ops = append(b.ops, batchOp{k: k, del: true})
	return nil
}

func (b *providerBatch) Commit(ctx context.Context) error {
	for _, op := range b.ops {
		if op.del {
			_ = b.d.Delete(ctx, op.k)
		} else {
			_ = b.d.Put(ctx, op.k, op.v)
		}
	}
	b.ops = nil
	return nil
}

// peerRate is a token bucket of bytes per remote peer.
type peerRate struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[peer.ID]*rate.Limiter
}

// maxRateBuckets bounds the buckets kept; past it, full (idle) ones go,
// since a new bucket is full anyway.
const maxRateBuckets = 4096

func newPeerRate(perSecond, burst int) *peerRate {
	return &peerRate{limit: rate.Limit(perSecond), burst: burst, buckets: map[peer.ID]*rate.Limiter{}}
}

func (r *peerRate) bucket(p peer.ID) *rate.Limiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[p]
	if b == nil {
		if len(r.buckets) >= maxRateBuckets {
			now := time.Now()
			for q, l := range r.buckets {
				if l.TokensAt(now) >= float64(r.burst) {
					delete(r.buckets, q)
				}
			}
		}
		b = rate.NewLimiter(r.limit, r.burst)
		r.buckets[p] = b
	}
	return b
}

// kadHost is the host kad-dht is given: the node's host, except that the
// DHT's stream handlers read each peer's streams no faster than the peer's
// byte budget allows. kad-dht handles a stream's messages one after the
// other with no limit of its own, so a peer that floods it is slowed down
// where it sends, by the transport's flow control, instead of costing the
// node CPU and memory at whatever rate it likes.
type kadHost struct {
	host.Host
	rate *peerRate
}

func (h *kadHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, func(s network.Stream) {
		handler(&throttledStream{Stream: s, b: h.rate.bucket(s.Conn().RemotePeer())})
	})
}

// throttledStream waits, after each read, until the peer's bucket covers
// what was read.
type throttledStream struct {
	network.Stream
	b *rate.Limiter
}

// streamReadWait bounds one wait, so a stream being closed is noticed.
const streamReadWait = 30 * time.Second

func (s *throttledStream) Read(p []byte) (int, error) {
	if len(p) > s.b.Burst() {
		p = p[:s.b.Burst()]
	}
	n, err := s.Stream.Read(p)
	if n > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), streamReadWait)
		werr := s.b.WaitN(ctx, n)
		cancel()
		if werr != nil && err == nil {
			// The wait would pass the deadline: the peer sends far more than
			// its budget; what was read is still handed on.
			time.Sleep(streamReadWait)
		}
	}
	return n, err
}
