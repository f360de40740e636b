package portmap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
)

// igdClient is what the three goupnp WAN connection clients have in common.
type igdClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16, intClient string, enabled bool, desc string, lease uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	GetSpecificPortMappingEntryCtx(ctx context.Context, remoteHost string, extPort uint16, proto string) (uint16, string, bool, string, uint32, error)
	GetServiceClient() *goupnp.ServiceClient
}

// anyPortAdder is WANIPConnection2's AddAnyPortMapping: the router picks a
// free external port when ours is taken.
type anyPortAdder interface {
	AddAnyPortMappingCtx(ctx context.Context, remoteHost string, extPort uint16, proto string, intPort uint16, intClient string, enabled bool, desc string, lease uint32) (uint16, error)
}

// gateway is one discovered router service.
type gateway struct {
	client   igdClient
	service  string     // e.g. "WANIPConnection2"
	location string     // description URL
	localIP  netip.Addr // our address as seen by the router: the internal client
	// permanentOnly is learned from error 725 and kept for this gateway.
	permanentOnly bool
}

// discover finds a gateway, preferring WANIPConnection2, then 1, then
// WANPPPConnection1, giving each search its own timeout (an SSDP search
// always waits ~2 s for answers). With loc set it reads that description URL
// and skips SSDP (which also never looks at loopback).
func discover(parent context.Context, loc *url.URL, perTry time.Duration) (*gateway, error) {
	type finder struct {
		name string
		find func() ([]igdClient, error)
	}
	var ctx context.Context
	finders := []finder{
		{"WANIPConnection2", func() ([]igdClient, error) {
			if loc != nil {
				c, err := internetgateway2.NewWANIPConnection2ClientsByURLCtx(ctx, loc)
				return asClients(c), err
			}
			c, _, err := internetgateway2.NewWANIPConnection2ClientsCtx(ctx)
			return asClients(c), err
		}},
		{"WANIPConnection1", func() ([]igdClient, error) {
			if loc != nil {
				c, err := internetgateway2.NewWANIPConnection1ClientsByURLCtx(ctx, loc)
				return asClients(c), err
			}
			c, _, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx)
			return asClients(c), err
		}},
		{"WANPPPConnection1", func() ([]igdClient, error) {
			if loc != nil {
				c, err := internetgateway2.NewWANPPPConnection1ClientsByURLCtx(ctx, loc)
				return asClients(c), err
			}
			c, _, err := internetgateway2.NewWANPPPConnection1ClientsCtx(ctx)
			return asClients(c), err
		}},
	}
	var errs []error
	for _, f := range finders {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, perTry)
		clients, err := f.find()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			if parent.Err() != nil {
				break
			}
			continue
		}
		for _, c := range clients {
			sc := c.GetServiceClient()
			ip, err := localIPFor(sc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s at %s: %w", f.name, sc.Location, err))
				continue
			}
			return &gateway{client: c, service: f.name, location: sc.Location.String(), localIP: ip}, nil
		}
	}
	if len(errs) == 0 {
		return nil, ErrNoGateway
	}
	return nil, fmt.Errorf("%w: %w", ErrNoGateway, errors.Join(errs...))
}

func asClients[T igdClient](cs []T) []igdClient {
	out := make([]igdClient, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// localIPFor returns the address the router sees us at. SSDP records it;
// for a description URL given directly, a connected UDP socket tells which
// source address the kernel picks (no packet is sent).
func localIPFor(sc *goupnp.ServiceClient) (netip.Addr, error) {
	if ip, ok := netip.AddrFromSlice(sc.LocalAddr()); ok && ip.Unmap().Is4() && !ip.IsUnspecified() {
		return ip.Unmap(), nil
	}
	host := sc.Location.Hostname()
	port := sc.Location.Port()
	if port == "" {
		port = "80"
	}
	c, err := net.Dial("udp4", net.JoinHostPort(host, port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find local address towards %s: %w", host, err)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find local address towards %s: %w", host, err)
	}
	return ap.Addr().Unmap(), nil
}
