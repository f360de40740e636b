// Package cardtest is an A/B card made of files for the tests of the
// update machinery's users (the appliance's updater, the daemon's commit
// step): a boot disk holding the boot state and one file per root slot,
// below a test's temporary directory, and the update.System that runs
// slot A on it. The update package's own tests, inside the package, keep
// theirs. It must not be imported by non-test code.
package cardtest

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bootenv"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

// Card is a card of files: Dir holds Disk (the boot state) and Slots.
type Card struct {
	Dir   string
	Disk  string
	Slots map[update.Slot]string
}

// New lays out a card whose boot disk holds boot and whose slots A and B
// are size bytes of fillA and fillB.
func New(t testing.TB, boot update.Boot, size int, fillA, fillB byte) *Card {
	t.Helper()
	c := &Card{Dir: t.TempDir(), Slots: map[update.Slot]string{}}
	c.Disk = filepath.Join(c.Dir, "disk")
	if err := os.WriteFile(c.Disk, make([]byte, 2<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for s, fill := range map[update.Slot]byte{update.SlotA: fillA, update.SlotB: fillB} {
		c.Slots[s] = filepath.Join(c.Dir, "slot"+string(s))
		if err := os.WriteFile(c.Slots[s], bytes.Repeat([]byte{fill}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := bootenv.Default(c.Disk).Init(boot.Env()); err != nil {
		t.Fatal(err)
	}
	return c
}

// System is the card running slot A with version, trusting keyring, with
// its update state in state.
func (c *Card) System(version string, keyring *bundle.Keyring, state update.Dir) *update.System {
	return &update.System{Current: update.SlotA, Slots: c.Slots, Boot: bootenv.Default(c.Disk), Compatible: "rpi-arm64",
		Version: version, Keyring: keyring, State: state}
}
