package discovery

import (
	"crypto/sha256"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// keyDomain prefixes the DHT key input.
const keyDomain = "redpanda/v2/dht"

// Day is a UTC calendar day, as days since the Unix epoch.
type Day int64

// DayOf returns the UTC day of t.
func DayOf(t time.Time) Day { return Day(t.UTC().Unix() / 86400) }

// Start returns the day's first instant (00:00 UTC).
func (d Day) Start() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String returns the day as YYYY-MM-DD.
func (d Day) String() string { return d.Start().Format(time.DateOnly) }

// ProvideKey is the DHT key under which the super nodes serving ch
// announce themselves on day d: the CID (v1, raw, SHA-256) of
// SHA-256("redpanda/v2/dht" || channel ID || day as YYYY-MM-DD). Observers
// see only the hash, which changes every day; anyone who knows the channel
// ID can compute it.
func ProvideKey(ch channel.ID, d Day) cid.Cid {
	h := sha256.New()
	h.Write([]byte(keyDomain))
	h.Write(ch[:])
	h.Write([]byte(d.String()))
	mh, err := multihash.Encode(h.Sum(nil), multihash.SHA2_256)
	if err != nil {
		panic("discovery: multihash of a SHA-256 digest: " + err.Error())
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// provideDays returns the days whose keys a serving node announces at
// now: today, and tomorrow too within window of midnight, so that a
// looker whose clock is already past midnight finds it. Yesterday's
// records stay valid on the DHT until they expire, and lookers also ask
// yesterday's key (lookupDays), which covers lookers whose clock is behind.
func provideDays(now time.Time, window time.Duration) []Day {
	today := DayOf(now)
	if (today + 1).Start().Sub(now) <= window {
		return []Day{today, today + 1}
	}
	return []Day{today}
}

// lookupDays returns the days whose keys a looker asks at now: today's
// and yesterday's.
func lookupDays(now time.Time) []Day {
	today := DayOf(now)
	return []Day{today, today - 1}
}
