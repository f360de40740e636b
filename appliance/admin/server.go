package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redpanda-p2p/homenode/internal/sockowner"
)

// SocketMode is the socket's permission: owner and group read/write, so
// `homenode status` works for members of the configured group.
const SocketMode os.FileMode = 0o660

// Listen opens the admin socket at path. A leftover socket file that
// nothing listens on (a crash) is removed; a live one is ErrSocketInUse;
// anything that is not a socket is ErrNotSocket and left alone. The socket
// is created under a temporary name, given SocketMode and, when group is
// not empty, that group, and only then renamed into place, so it is never
// reachable with looser permissions. Closing the listener removes it.
func Listen(path, group string) (net.Listener, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("admin: socket group: %w", err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("admin: socket group %s: gid %q: %w", group, g.Gid, err)
		}
	}
	tmp := path + ".tmp-" + strconv.Itoa(os.Getpid())
	os.Remove(tmp) // a leftover from this very PID is ours by definition
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin: listen %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, SocketMode); err != nil {
		return fail(fmt.Errorf("admin: chmod socket: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("admin: chown socket to group %s: %w", group, err))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("admin: place socket: %w", err))
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("admin: stat socket: %w", err))
	}
	return &socketListener{UnixListener: l, path: path, fi: fi}, nil
}

func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin: stat %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		holder := "another process"
		if uc, ok := c.(*net.UnixConn); ok {
			holder = sockowner.UnixPeer(uc).String()
		}
		c.Close()
		return fmt.Errorf("%w: %s is held by %s", ErrSocketInUse, path, holder)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin: probe %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("admin: remove stale socket: %w", err)
	}
	return nil
}

type socketListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
	err  error
}

// Close stops listening and removes the socket file, unless another
// process has since put its own socket there. Concurrent callers all
// return once the file is gone.
func (l *socketListener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return l.err
}

// Server answers admin requests on a listener.
type Server struct {
	Backend Backend
	Logger  *slog.Logger // default slog.Default()
	// IdleTimeout closes a connection that sends nothing for this long;
	// default one minute.
	IdleTimeout time.Duration
}

// Serve accepts connections until ctx ends, then closes the listener and
// every connection and waits for their handlers. It returns nil after a
// clean stop. The listener is closed when Serve returns.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	defer l.Close()
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = time.Minute
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	stop := context.AfterFunc(ctx, func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	for {
		c, err := l.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("admin: accept: %w", err)
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveConn(ctx, c, idle, log)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn, idle time.Duration, log *slog.Logger) {
	// The buffer is the cap: a line longer than MaxRequestSize is refused
	// before anything of its size is allocated.
	r := bufio.NewReaderSize(c, MaxRequestSize)
	enc := json.NewEncoder(c)
	for {
		c.SetReadDeadline(time.Now().Add(idle))
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			s.reply(enc, nil, fmt.Errorf("%w: limit %d bytes", ErrRequestTooLarge, MaxRequestSize))
			return // the rest of the line cannot be resynchronised
		}
		if err != nil && len(line) == 0 {
			return // EOF, idle timeout or shutdown
		}
		req, perr := ParseRequest(trimNewline(line))
		if perr != nil {
			log.Debug("admin: bad request", "err", perr)
			s.reply(enc, nil, perr)
		} else {
			res, derr := dispatch(ctx, s.Backend, req)
			if derr != nil {
				log.Info("admin: request failed", "cmd", req.Cmd, "arg", req.Arg, "err", derr)
			} else if req.Cmd == CmdRevoke || req.Cmd == CmdBlock || req.Cmd == CmdUnblock {
				log.Info("admin: done", "cmd", req.Cmd, "arg", req.Arg)
			}
			s.reply(enc, res, derr)
		}
		if err != nil {
			return // the final line had no newline; nothing more can come
		}
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func (s *Server) reply(enc *json.Encoder, res any, err error) {
	resp := Response{OK: err == nil}
	if err != nil {
		resp.Error = &RemoteError{Code: codeOf(err), Message: err.Error()}
	} else {
		b, merr := json.Marshal(res)
		if merr != nil {
			resp = Response{Error: &RemoteError{Code: "failed", Message: "admin: encode result: " + merr.Error()}}
		} else {
			resp.Result = b
		}
	}
	enc.Encode(resp) // a client that hung up is not the server's problem
}
