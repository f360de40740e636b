// Command pairtest pairs with a home node booted by image/test.sh, as the
// phone app would, but through QEMU's forwarded port: the node's pairing
// URI names its own (guest) addresses, which the host cannot reach, so
// -addr replaces them. It is a test aid of the image boot test only; the
// real client is `redpanda pair`. It knows nothing of QEMU or systemd.
//
//	pairtest -uri RPPAIR1:... -addr 127.0.0.1:14001
//
// It prints the owner identity it paired as and exits 0 on success.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/redpanda-p2p/homenode/provisioning"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pairtest:", err)
		os.Exit(1)
	}
}

func run() error {
	uri := flag.String("uri", "", "the node's pairing URI (RPPAIR1:...)")
	addr := flag.String("addr", "", "host address forwarded to the node's TCP port, e.g. 127.0.0.1:14001")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long (the guest is emulated)")
	flag.Parse()
	if *uri == "" || *addr == "" {
		return errors.New("-uri and -addr are required")
	}
	u, err := provisioning.ParseURI(*uri)
	if err != nil {
		return err
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	u.Addrs = []provisioning.Addr{{Transport: provisioning.TCP, AddrPort: ap}}

	_, owner, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	h, err := libp2p.New(libp2p.NoListenAddrs)
	if err != nil {
		return fmt.Errorf("libp2p host: %w", err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := provisioning.PairURI(ctx, h, u, owner); err != nil {
		return err
	}
	fmt.Printf("paired owner=%s\n", hex.EncodeToString(owner.Public().(ed25519.PublicKey)))
	return nil
}
