package update

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redpanda-p2p/homenode/update/bootenv"
)

// Slot names a root partition of the A/B layout.
type Slot string

// The two slots: partitions 2 and 3 of the boot disk.
const (
	SlotA Slot = "A"
	SlotB Slot = "B"
)

// Other is the slot that is not s.
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Partition is the slot's partition number on the boot disk.
func (s Slot) Partition() int {
	if s == SlotA {
		return 2
	}
	return 3
}

func parseSlot(s string) (Slot, error) {
	switch Slot(s) {
	case SlotA, SlotB:
		return Slot(s), nil
	}
	return "", fmt.Errorf("update: %q is not a slot (A or B)", s)
}

// CommittedTries is the boot count a committed slot gets back on every
// healthy boot: the boot script takes one per boot, so a committed system
// that stops booting falls back to the other slot after three tries.
const CommittedTries = 3

// Boot is the boot state the script (image/boot.cmd) acts on, in the
// variables it reads and writes:
//
//	BOOT_ORDER   slots to try, in order ("A B")
//	BOOT_A_LEFT  boots left for slot A; the script takes one before booting
//	BOOT_B_LEFT  the same for B; a slot with none left is skipped
//	BOOT_TRIAL   the slot on trial: installed, not yet committed
//
// A slot is chosen by the script only while it has boots left; Linux
// gives a committed slot its boots back after each healthy boot.
type Boot struct {
	Order []Slot
	Left  map[Slot]int
	Trial Slot // "" when no update is on trial
}

// The variable names, as in image/boot.cmd.
const (
	varOrder = "BOOT_ORDER"
	varTrial = "BOOT_TRIAL"
)

func varLeft(s Slot) string { return "BOOT_" + string(s) + "_LEFT" }

// DefaultBoot is what the script assumes with no valid copy: slot A, then
// B, three tries each.
func DefaultBoot() Boot {
	return Boot{Order: []Slot{SlotA, SlotB}, Left: map[Slot]int{SlotA: CommittedTries, SlotB: CommittedTries}}
}

// ParseBoot reads the boot variables; unknown slots or numbers are errors.
func ParseBoot(env bootenv.Env) (Boot, error) {
	b := Boot{Left: map[Slot]int{}}
	for _, f := range strings.Fields(env[varOrder]) {
		s, err := parseSlot(f)
		if err != nil {
			return b, fmt.Errorf("update: %s=%q: %w", varOrder, env[varOrder], err)
		}
		if !slices.Contains(b.Order, s) {
			b.Order = append(b.Order, s)
		}
	}
	for _, s := range []Slot{SlotA, SlotB} {
		v, ok := env[varLeft(s)]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 16, 8) // the script's setexpr writes hex
		if err != nil {
			return b, fmt.Errorf("update: %s=%q: %w", varLeft(s), v, err)
		}
		b.Left[s] = int(n)
	}
	if t := env[varTrial]; t != "" {
		s, err := parseSlot(t)
		if err != nil {
			return b, fmt.Errorf("update: %s: %w", varTrial, err)
		}
		b.Trial = s
	}
	return b, nil
}

// Env returns the variables of b, as the script reads them.
func (b Boot) Env() bootenv.Env {
	env := bootenv.Env{}
	var order []string
	for _, s := range b.Order {
		order = append(order, string(s))
	}
	env[varOrder] = strings.Join(order, " ")
	for _, s := range []Slot{SlotA, SlotB} {
		env[varLeft(s)] = strconv.FormatInt(int64(b.Left[s]), 16)
	}
	if b.Trial != "" {
		env[varTrial] = string(b.Trial)
	}
	return env
}

// Choose is the boot script's choice, for tests and `homenode update
// status`: the first slot in order with boots left, which loses one; with
// none left, every slot gets CommittedTries again and the first in order is
// taken (a box that boots something beats one that boots nothing).
func (b Boot) Choose() (Slot, Boot) {
	next := Boot{Order: slices.Clone(b.Order), Left: map[Slot]int{}, Trial: b.Trial}
	for s, n := range b.Left {
		next.Left[s] = n
	}
	for _, s := range b.Order {
		if next.Left[s] > 0 {
			next.Left[s]--
			return s, next
		}
	}
	for _, s := range []Slot{SlotA, SlotB} {
		next.Left[s] = CommittedTries
	}
	if len(next.Order) == 0 {
		next.Order = []Slot{SlotA, SlotB}
	}
	s := next.Order[0]
	next.Left[s]--
	return s, next
}

func (b Boot) String() string {
	return fmt.Sprintf("order %v, boots left A=%d B=%d, trial %q", b.Order, b.Left[SlotA], b.Left[SlotB], b.Trial)
}
