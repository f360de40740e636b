package discovery

import "github.com/multiformats/go-multiaddr"

// mergeAddrs returns a with the addresses of b it lacks.
func mergeAddrs(a, b []multiaddr.Multiaddr) []multiaddr.Multiaddr {
next:
	for _, x := range b {
		for _, y := range a {
			if x.Equal(y) {
				continue next
			}
		}
		a = append(a, x)
	}
	return a
}
