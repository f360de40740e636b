package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redpanda-p2p/homenode/status"
)

// MaxResponseSize bounds one response line read by the client: a status
// report with thousands of channels fits comfortably.
const MaxResponseSize = 16 << 20

// Client talks to a running node over its admin socket. It is safe for
// concurrent use; requests are sent one at a time.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the admin socket at path.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: connect to %s (is homenode running, and are you in its group?): %w", path, err)
	}
	return &Client{conn: c, r: bufio.NewReader(c)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends one request and returns the raw JSON result, which is what
// `--json` prints. Server errors come back as *RemoteError.
func (c *Client) Call(ctx context.Context, cmd, arg string) (json.RawMessage, error) {
	line, err := json.Marshal(Request{Cmd: cmd, Arg: arg})
	if err != nil {
		return nil, fmt.Errorf("admin: encode request: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
	} else {
		c.conn.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("admin: %s: send: %w", cmd, ctxErr(ctx, err))
	}
	line, err = readLine(c.r, MaxResponseSize)
	if err != nil {
		return nil, fmt.Errorf("admin: %s: read response: %w", cmd, ctxErr(ctx, err))
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("admin: %s: decode response: %w", cmd, err)
	}
	if !resp.OK {
		if resp.Error == nil {
			return nil, fmt.Errorf("admin: %s: server failed without saying why", cmd)
		}
		return nil, resp.Error
	}
	return resp.Result, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

func call[T any](ctx context.Context, c *Client, cmd, arg string) (T, error) {
	var v T
	raw, err := c.Call(ctx, cmd, arg)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("admin: %s: decode result: %w", cmd, err)
	}
	return v, nil
}

// Status returns the node's status report.
func (c *Client) Status(ctx context.Context) (status.Report, error) {
	return call[status.Report](ctx, c, CmdStatus, "")
}

// Peers lists connected peers.
func (c *Client) Peers(ctx context.Context) ([]status.Peer, error) {
	return call[[]status.Peer](ctx, c, CmdPeers, "")
}

// Users lists registered users.
func (c *Client) Users(ctx context.Context) ([]status.User, error) {
	return call[[]status.User](ctx, c, CmdUsers, "")
}

// Channels lists served channels.
func (c *Client) Channels(ctx context.Context) ([]status.Channel, error) {
	return call[[]status.Channel](ctx, c, CmdChannels, "")
}

// Revoke removes an identity and everyone it sponsored.
func (c *Client) Revoke(ctx context.Context, identity string) ([]string, error) {
	r, err := call[RevokeResult](ctx, c, CmdRevoke, identity)
	return r.Revoked, err
}

// Block stops serving a channel.
func (c *Client) Block(ctx context.Context, channel string) error {
	_, err := c.Call(ctx, CmdBlock, channel)
	return err
}

// Unblock resumes serving a channel.
func (c *Client) Unblock(ctx context.Context, channel string) error {
	_, err := c.Call(ctx, CmdUnblock, channel)
	return err
}

// Branch lists the registered users who asked for a channel, with the
// trust chains that admitted them.
func (c *Client) Branch(ctx context.Context, channel string) ([]status.User, error) {
	return call[[]status.User](ctx, c, CmdBranch, channel)
}

// Prune revokes the sponsors that brought a channel in.
func (c *Client) Prune(ctx context.Context, channel string) ([]string, error) {
	r, err := call[RevokeResult](ctx, c, CmdPrune, channel)
	return r.Revoked, err
}

// Reset asks the running node for a factory reset.
func (c *Client) Reset(ctx context.Context) error {
	_, err := c.Call(ctx, CmdReset, "")
	return err
}

// readLine reads one newline-terminated line of at most limit bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > limit {
			return nil, fmt.Errorf("response larger than %d bytes", limit)
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}
