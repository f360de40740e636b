package bundle

import (
	"fmt"
	"strconv"
	"strings"
)

// Versions are Debian versions ([epoch:]upstream[-revision]), ordered as
// dpkg orders them, so that a bundle and the .deb of one build carry the
// same version string and agree on what is newer: "1.2.0-1" < "1.10.0-1",
// "1.0~rc1-1" < "1.0-1", and git builds "0~git20261206...-1" sort before
// any release.

// CheckVersion reports whether v is a valid Debian version.
func CheckVersion(v string) error {
	_, _, _, err := splitVersion(v)
	return err
}

// CompareVersions returns -1, 0 or +1 as a is older than, the same as, or
// newer than b. Invalid versions sort before every valid one and equal
// each other: callers check them first.
func CompareVersions(a, b string) int {
	ea, ua, ra, errA := splitVersion(a)
	eb, ub, rb, errB := splitVersion(b)
	switch {
	case errA != nil && errB != nil:
		return 0
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	if ea != eb {
		if ea < eb {
			return -1
		}
		return 1
	}
	if c := compareFragment(ua, ub); c != 0 {
		return c
	}
	return compareFragment(ra, rb)
}

func splitVersion(v string) (epoch int, upstream, revision string, err error) {
	if v == "" || strings.ContainsAny(v, " \t\n") {
		return 0, "", "", fmt.Errorf("bundle: version %q: empty or contains spaces", v)
	}
	rest := v
	if e, r, ok := strings.Cut(v, ":"); ok {
		n, perr := strconv.Atoi(e)
		if perr != nil || n < 0 {
			return 0, "", "", fmt.Errorf("bundle: version %q: bad epoch", v)
		}
		epoch, rest = n, r
	}
	upstream = rest
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return 0, "", "", fmt.Errorf("bundle: version %q: empty revision", v)
		}
	}
	if upstream == "" || upstream[0] < '0' || upstream[0] > '9' {
		return 0, "", "", fmt.Errorf("bundle: version %q: the upstream part must start with a digit", v)
	}
	for _, c := range upstream {
		if !isAlnum(c) && !strings.ContainsRune(".+~-:", c) {
			return 0, "", "", fmt.Errorf("bundle: version %q: character %q", v, c)
		}
	}
	for _, c := range revision {
		if !isAlnum(c) && !strings.ContainsRune(".+~", c) {
			return 0, "", "", fmt.Errorf("bundle: version %q: character %q in the revision", v, c)
		}
	}
	return epoch, upstream, revision, nil
}

func isAlnum(c rune) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// order is dpkg's weight of a character in the non-digit parts: '~' before
// the end of the part, letters before the rest.
func order(c byte) int {
	switch {
	case c == '~':
		return -1
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	default:
		return int(c) + 256
	}
}

// compareFragment is dpkg's verrevcmp.
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && (a[0] < '0' || a[0] > '9')) || (b != "" && (b[0] < '0' || b[0] > '9')) {
			var ac, bc int
			if a != "" {
				ac = order(a[0])
			}
			if b != "" {
				bc = order(b[0])
			}
			if ac != bc {
				if ac < bc {
					return -1
				}
				return 1
			}
			if a != "" {
				a = a[1:]
			}
			if b != "" {
				b = b[1:]
			}
		}
		for a != "" && a[0] == '0' {
			a = a[1:]
		}
		for b != "" && b[0] == '0' {
			b = b[1:]
		}
		firstDiff := 0
		for a != "" && b != "" && a[0] >= '0' && a[0] <= '9' && b[0] >= '0' && b[0] <= '9' {
			if firstDiff == 0 {
				firstDiff = int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
		}
		if a != "" && a[0] >= '0' && a[0] <= '9' {
			return 1
		}
		if b != "" && b[0] >= '0' && b[0] <= '9' {
			return -1
		}
		if firstDiff != 0 {
			if firstDiff < 0 {
				return -1
			}
			return 1
		}
	}
	return 0
}
