package discovery

import (
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/redpanda-p2p/homenode/node/channel"
	"github.com/redpanda-p2p/homenode/node/store"
)

// ProtocolPrefix is the DHT's protocol prefix: the DHT speaks
// /redpanda/kad/1.0.0 and never meets the public IPFS (Amino) DHT.
const ProtocolPrefix = "/redpanda"

// Defaults for Config fields left zero.
const (
	DefaultMinPeers          = 3
	DefaultMaxPeers          = 5
	DefaultMaxAttempts       = 8
	DefaultConcurrency       = 4
	DefaultFailureBackoff    = 10 * time.Minute
	DefaultDialTimeout       = 10 * time.Second
	DefaultLookupTimeout     = 30 * time.Second
	DefaultMaintainInterval  = 30 * time.Second
	DefaultReprovideInterval = time.Hour
	DefaultProvideValidity   = 6 * time.Hour
	DefaultBoundaryWindow    = time.Hour
	DefaultPersistInterval   = 5 * time.Minute
	DefaultAuthzWait         = 2 * time.Second
	// DefaultMaxPeersPerIPGroup and DefaultMaxPeersPerIPGroupPerCpl are the
	// routing-table diversity limits of the public DHT (amino defaults):
	// at most 3 peers from one /16 (IPv4) or ASN (IPv6) in the table, 2 in
	// one bucket, so one network cannot fill a node's view of the DHT.
	DefaultMaxPeersPerIPGroup       = 3
	DefaultMaxPeersPerIPGroupPerCpl = 2
	// maxPersistedPeers bounds the peers remembered across restarts.
	maxPersistedPeers = 32
	// maxRuntimeBootstrap bounds the bootstrap peers added at run time.
	maxRuntimeBootstrap = 64

	// MaxStatementValidity is the longest a statement is used from the
	// moment it arrives, whatever its Until says (clients issue 7-day
	// statements and renew them).
	MaxStatementValidity = 31 * 24 * time.Hour
	// DefaultMaxAuthzPerPeer and DefaultMaxAuthz bound the remembered
	// proofs of other super nodes, per peer and in total (~100 bytes each).
	DefaultMaxAuthzPerPeer = 4096
	DefaultMaxAuthz        = 1 << 16
	// DefaultMaxProviderRecords, DefaultMaxProviderRecordsPerPeer and
	// DefaultMaxProvidersPerKey bound the provider records other nodes
	// store here (a few hundred bytes each with the provider's
	// addresses): a super node provides two or three keys per channel
	// it serves, a channel has 3-5 super nodes.
	DefaultMaxProviderRecords        = 1 << 16
	DefaultMaxProviderRecordsPerPeer = 4096
	DefaultMaxProvidersPerKey        = 64
	// DefaultKadBytesPerSecond and DefaultKadBurst bound what one peer may
	// send on DHT streams: an honest peer's lookups and provides are a
	// few hundred bytes each.
	DefaultKadBytesPerSecond = 32 << 10
	DefaultKadBurst          = 256 << 10
)

// Node is the super node a Service works for, as discovery sees it: the
// one seam between the two, which package node implements.
type Node interface {
	// PeerAuthorized is called (in its own goroutine) each time a peer
	// proves it serves a channel; the node resyncs that channel with it,
	// since the catch-up at connection time came before the proof.
	PeerAuthorized(p peer.ID, ch channel.ID)
	// HandOverChannels returns the channels peer p may hand over
	// statements for (HandOverProtocol): the channels of p's
	// registration, none for a stranger, so a registrant hands over at
	// most its channel cap. Statements must name this node. Handed-over
	// statements live only while Retain keeps their channel.
	HandOverChannels(p peer.ID) []channel.ID
	// HandedOver is called after a hand-over added served channels, so
	// the node starts storing and relaying them.
	HandedOver(chs []channel.ID)
	// MayIntroduce reports whether p (one of the node's registered
	// users) may introduce other super nodes (IntroduceProtocol), which
	// become friend nodes (friends.go).
	MayIntroduce(p peer.ID) bool
}

// Config configures a Service. Zero fields take the defaults.
type Config struct {
	// Bootstrap are the configured DHT peers (the owner's contacts, a
	// known super node). Optional: super nodes learned at run time are
	// added with AddBootstrap, and the peers known before a restart are
	// read from Meta.
	Bootstrap []peer.AddrInfo
	// Node is the super node the service works for (package node): what
	// it is told and whom it lets hand over statements or introduce
	// nodes. Nil: HandOverProtocol and IntroduceProtocol are not served
	// and nobody is told of proofs.
	Node Node
	// Meta persists the routing table's peers and this node's statements
	// across restarts (the node passes db.Meta("dht")). Nil: nothing is
	// persisted.
	Meta *store.Meta
	// MinPeers and MaxPeers: when fewer than MinPeers authorized super
	// nodes are connected for a served channel, providers are looked up
	// and tried until MaxPeers are. Defaults 3 and 5 (paper §4.4.2).
	MinPeers, MaxPeers int
	// MaxAttempts bounds the providers tried per channel per round, so
	// that many fake providers cost bounded work; the ones that fail are
	// skipped for FailureBackoff and later rounds try others. Default 8.
	MaxAttempts int
	// Concurrency is the providers tried at once per channel; default 4.
	Concurrency int
	// FailureBackoff is how long a provider that failed (no answer, no
	// valid statement) is skipped; default 10 min.
	FailureBackoff time.Duration
	// DialTimeout bounds connecting to a provider and exchanging
	// statements; default 10 s.
	DialTimeout time.Duration
	// LookupTimeout bounds one provider lookup; default 30 s.
	LookupTimeout time.Duration
	// MaintainInterval is how often each served channel's peers are
	// checked; default 30 s.
	MaintainInterval time.Duration
	// ReprovideInterval is how often a key is provided again; default 1 h.
	ReprovideInterval time.Duration
	// ProvideValidity is how long this node keeps provider records others
	// store at it; default 6 h (a few reprovide rounds: records of a node
	// that stopped serving fade within hours).
	ProvideValidity time.Duration
	// BoundaryWindow: within this time before midnight UTC, tomorrow's key
	// is provided too; default 1 h.
	BoundaryWindow time.Duration
	// PersistInterval is how often the routing table is saved to Meta;
	// default 5 min (and at Close).
	PersistInterval time.Duration
	// AuthzWait is how long Authorized waits for a statement exchange with
	// the peer that is under way; default 2 s.
	AuthzWait time.Duration
	// MaxLookupBackoff is the longest wait between provider lookups of a
	// channel whose lookups find no new super node (idle.go); default
	// ReprovideInterval. A lost super node makes the next lookup due at
	// once, and a new one finds this node by its own lookup, so a long
	// wait delays nothing the network simulation could see, while a
	// short one made lookups for two-home channels most of a home's DHT
	// traffic (docs/SCALE.md).
	MaxLookupBackoff time.Duration
	// RefreshPeriod is how often kad-dht refreshes its routing table (a
	// walk per bucket not used since); default 0, kad-dht's own (10 min).
	// In the network simulation these walks are most of a home's DHT
	// traffic at 100 homes (docs/SCALE.md).
	RefreshPeriod time.Duration
	// MaxAuthzPerPeer and MaxAuthz bound the proofs of other super nodes
	// kept (only for channels this node serves); defaults above.
	MaxAuthzPerPeer, MaxAuthz int
	// MaxProviderRecords, MaxProviderRecordsPerPeer and MaxProvidersPerKey
	// bound the DHT provider records stored for others; records past them
	// are dropped. Defaults above.
	MaxProviderRecords, MaxProviderRecordsPerPeer, MaxProvidersPerKey int
	// KadBytesPerSecond and KadBurst bound the bytes read from one peer's
	// DHT streams; a peer that sends faster is slowed down (its streams
	// are read no faster). Defaults above.
	KadBytesPerSecond, KadBurst int
	// MaxPeersPerIPGroup and MaxPeersPerIPGroupPerCpl are the routing-table
	// diversity filter's limits; defaults 3 and 2. Tests that run many
	// nodes on loopback (one IP group) raise them.
	MaxPeersPerIPGroup, MaxPeersPerIPGroupPerCpl int
	// Now is the clock for statements and key days; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	setInt(&c.MinPeers, DefaultMinPeers)
	setInt(&c.MaxPeers, DefaultMaxPeers)
	c.MaxPeers = max(c.MaxPeers, c.MinPeers)
	setInt(&c.MaxAttempts, DefaultMaxAttempts)
	setInt(&c.Concurrency, DefaultConcurrency)
	setDur(&c.FailureBackoff, DefaultFailureBackoff)
	setDur(&c.DialTimeout, DefaultDialTimeout)
	setDur(&c.LookupTimeout, DefaultLookupTimeout)
	setDur(&c.MaintainInterval, DefaultMaintainInterval)
	setDur(&c.ReprovideInterval, DefaultReprovideInterval)
	setDur(&c.ProvideValidity, DefaultProvideValidity)
	setDur(&c.BoundaryWindow, DefaultBoundaryWindow)
	setDur(&c.PersistInterval, DefaultPersistInterval)
	setDur(&c.AuthzWait, DefaultAuthzWait)
	setDur(&c.MaxLookupBackoff, c.ReprovideInterval)
	setInt(&c.MaxAuthzPerPeer, DefaultMaxAuthzPerPeer)
	setInt(&c.MaxAuthz, DefaultMaxAuthz)
	setInt(&c.MaxProviderRecords, DefaultMaxProviderRecords)
	setInt(&c.MaxProviderRecordsPerPeer, DefaultMaxProviderRecordsPerPeer)
	setInt(&c.MaxProvidersPerKey, DefaultMaxProvidersPerKey)
	setInt(&c.KadBytesPerSecond, DefaultKadBytesPerSecond)
	setInt(&c.KadBurst, DefaultKadBurst)
	setInt(&c.MaxPeersPerIPGroup, DefaultMaxPeersPerIPGroup)
	setInt(&c.MaxPeersPerIPGroupPerCpl, DefaultMaxPeersPerIPGroupPerCpl)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func setInt(p *int, def int) {
	if *p <= 0 {
		*p = def
	}
}

func setDur(p *time.Duration, def time.Duration) {
	if *p <= 0 {
		*p = def
	}
}
