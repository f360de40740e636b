package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redpanda-p2p/homenode/internal/sockowner"
)

// DefaultAddr is the default listen address: "lan:8080" means port 8080 on
// loopback and on every private address of the box (IPv4 RFC 1918 and IPv6
// ULA), never a public one. The page shows the owner's identity, the peers
// and, before pairing, the token that makes someone the owner: it is for
// the home network only. A config may name any "HOST:PORT" instead; a
// public or unspecified host (0.0.0.0, ::) is then the person's own choice.
const DefaultAddr = "lan:8080"

// ErrNoLANAddress is returned by Listen for "lan:PORT" when the box has no
// loopback or private address to listen on.
var ErrNoLANAddress = errors.New("web: no loopback or private address to listen on")

// Listen opens the listeners for addr: "lan:PORT" as described at
// DefaultAddr, or a single "HOST:PORT".
func Listen(addr string) ([]net.Listener, error) {
	port, ok := strings.CutPrefix(addr, "lan:")
	if !ok {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("web: listen %s%s: %w", addr, heldBy(err, addr), err)
		}
		return []net.Listener{l}, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("web: interface addresses: %w", err)
	}
	var ls []net.Listener
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !(ipn.IP.IsLoopback() || ipn.IP.IsPrivate()) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ipn.IP.String(), port))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("web: listen %s%s: %w", net.JoinHostPort(ipn.IP.String(), port), heldBy(err, ":"+port), err)
		}
		ls = append(ls, l)
	}
	if len(ls) == 0 {
		return nil, ErrNoLANAddress
	}
	return ls, nil
}

// heldBy is ": port N/tcp is in use by pid M (CMD)" when err says the port of hostport
// is in use, else empty.
func heldBy(err error, hostport string) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	_, p, _ := net.SplitHostPort(hostport)
	port, perr := strconv.Atoi(p)
	if perr != nil {
		return ""
	}
	return fmt.Sprintf(": port %d/tcp is in use by %s", port, sockowner.Describe(sockowner.Port("tcp", port)))
}

// Serve serves h on every listener until ctx ends, then drains in-flight
// requests for up to grace. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ls []net.Listener, h http.Handler, grace time.Duration, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		log.Info("status page listening", "url", "http://"+l.Addr().String()+"/")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("web: serve %s: %w", l.Addr(), err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("web: shutdown: %w", serr)
	}
	wg.Wait()
	return err
}
