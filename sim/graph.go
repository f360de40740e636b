package sim

import (
	"math/rand/v2"
	"slices"

	"github.com/redpanda-p2p/homenode/node/channel"
)

// Person is an owner: a person whose channels their home node serves.
type Person struct {
	ID       int
	Home     int
	Identity *channel.Identity
	Friends  []int // person IDs
	Channels []*Channel
}

// Channel is a conversation: its key (the sim holds every member's
// key, as their phones would), who created it, its members and the
// distinct homes that serve it.
type Channel struct {
	N       int
	Key     *channel.Key
	Creator int   // person ID
	Members []int // person IDs, creator first
	Homes   []int // distinct homes of the members, creator's first
}

// Graph is the social side of a network: people, their friendships and
// channels.
type Graph struct {
	People   []*Person
	Channels []*Channel
	// HomeOwners lists the people each home serves.
	HomeOwners [][]int
}

// NewGraph lays out owners*homes people, owners per home, on a
// Watts–Strogatz small world over the homes: each home's people are
// friends of one another and of the people of the degree/2 homes on each
// side of it on a ring, and each of those links is moved with
// probability rewire to a random home. Each person creates perPerson
// channels: with probability dm a conversation with one friend,
// otherwise a group of 3–8 with friends and friends of friends. Homes
// that are near on the ring share most channels; rewired links make
// some channels span the network.
func NewGraph(rng *rand.Rand, homes, owners, degree int, rewire, dm float64, perPerson int, keyRand *rand.ChaCha8) *Graph {
	g := &Graph{HomeOwners: make([][]int, homes)}
	for h := range homes {
		for range owners {
			id, err := channel.NewIdentity(keyRand)
			if err != nil {
				panic(err) // a ChaCha8 stream does not fail
			}
			p := &Person{ID: len(g.People), Home: h, Identity: id}
			g.People = append(g.People, p)
			g.HomeOwners[h] = append(g.HomeOwners[h], p.ID)
		}
	}
	befriend := func(a, b int) {
		if a == b || slices.Contains(g.People[a].Friends, b) {
			return
		}
		g.People[a].Friends = append(g.People[a].Friends, b)
		g.People[b].Friends = append(g.People[b].Friends, a)
	}
	for h := range homes {
		for _, a := range g.HomeOwners[h] {
			for _, b := range g.HomeOwners[h] {
				befriend(a, b)
			}
		}
	}
	// Ring lattice over homes, rewired: a link between two homes makes
	// each person of one a friend of one person of the other, which keeps
	// a person's friends near degree.
	for h := range homes {
		for k := 1; k <= degree/2 && k < homes; k++ {
			o := (h + k) % homes
			if rng.Float64() < rewire {
				o = rng.IntN(homes)
			}
			if o == h {
				continue
			}
			for _, a := range g.HomeOwners[h] {
				b := g.HomeOwners[o][rng.IntN(len(g.HomeOwners[o]))]
				befriend(a, b)
			}
		}
	}
	for _, p := range g.People {
		for range perPerson {
			members := []int{p.ID}
			if rng.Float64() < dm || len(p.Friends) < 2 {
				members = append(members, p.Friends[rng.IntN(len(p.Friends))])
			} else {
				size := 3 + rng.IntN(6)
				// Friends first, then friends of friends.
				cands := slices.Clone(p.Friends)
				for _, f := range p.Friends {
					cands = append(cands, g.People[f].Friends...)
				}
				for tries := 0; len(members) < size && tries < 10*size; tries++ {
					var c int
					if tries < 2*size && len(members) < size/2+1 {
						c = p.Friends[rng.IntN(len(p.Friends))]
					} else {
						c = cands[rng.IntN(len(cands))]
					}
					if !slices.Contains(members, c) {
						members = append(members, c)
					}
				}
			}
			key, err := channel.NewKey(keyRand)
			if err != nil {
				panic(err)
			}
			ch := &Channel{N: len(g.Channels), Key: key, Creator: p.ID, Members: members}
			for _, m := range members {
				if h := g.People[m].Home; !slices.Contains(ch.Homes, h) {
					ch.Homes = append(ch.Homes, h)
				}
				g.People[m].Channels = append(g.People[m].Channels, ch)
			}
			g.Channels = append(g.Channels, ch)
		}
	}
	return g
}

// HomeChannels lists the channels home h serves: its owners'.
func (g *Graph) HomeChannels(h int) []*Channel {
	var out []*Channel
	for _, p := range g.HomeOwners[h] {
		for _, ch := range g.People[p].Channels {
			if !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		}
	}
	return out
}
