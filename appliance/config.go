package appliance

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/redpanda-p2p/homenode/node/p2p"
)

// DefaultConfigFile is where the packaged node reads its configuration.
const DefaultConfigFile = "/etc/homenode/homenode.toml"

// EnvPrefix starts every environment override: HOMENODE_DATA_DIR=... sets
// data_dir. Lists are comma-separated.
const EnvPrefix = "HOMENODE_"

// Config is the daemon's configuration: defaults, then the TOML file,
// then HOMENODE_* environment variables, then command-line flags.
// docs/CONFIG.md lists every key with its default; keep the two in step
// (a test checks that every key is documented).
type Config struct {
	// DataDir holds the identity, the store and the port-mapping state.
	DataDir string `toml:"data_dir"`
	// Listen are the libp2p listen multiaddrs.
	Listen []string `toml:"listen"`
	// Peers are nodes (multiaddr ending in /p2p/ID) kept connected.
	Peers []string `toml:"peers"`
	// HTTP is the status page and /metrics address: "lan:PORT" listens on
	// loopback and private addresses only; "off" disables it.
	HTTP string `toml:"http"`
	// HTTPHosts are names, besides the box's IP addresses, localhost and
	// its host name (also under .local), that requests to the status page
	// may carry in Host; any other Host is refused (DNS rebinding).
	HTTPHosts []string `toml:"http_hosts"`
	// AdminSocket is the Unix socket of the homenode subcommands.
	AdminSocket string `toml:"admin_socket"`
	// AdminGroup may use the admin socket (mode 0660); empty keeps the
	// daemon's own group.
	AdminGroup string `toml:"admin_group"`
	// Owner is an owner identity set by configuration ("rpi…", what
	// `redpanda id` prints), for nodes not paired by QR code.
	Owner string `toml:"owner"`
	// Capacity is how many users the node serves at once.
	Capacity int `toml:"capacity"`
	// AllowHopInfinity accepts users with no ticket chain to the owner.
	AllowHopInfinity bool `toml:"allow_hop_infinity"`
	// UPnP maps the node's ports on the home router.
	UPnP bool `toml:"upnp"`
	// Relay turns on AutoNAT, hole punching, the relay client when the
	// node is behind NAT, and the relay service (for registered users only)
	// when it is reachable.
	Relay bool `toml:"relay"`
	// Relays are friends' reachable nodes (multiaddrs ending in /p2p/ID)
	// to hold a relay slot on when no port can be opened.
	Relays []string `toml:"relays"`
	// ChannelRate and ChannelBurst limit how fast one channel's messages
	// are taken in from peers (spam defence); 0 turns the limit off.
	ChannelRate  float64 `toml:"channel_rate"`
	ChannelBurst int     `toml:"channel_burst"`
	// Retention is how long messages are kept.
	Retention Duration `toml:"retention"`
	// ClockSkew is how far in the future a message's timestamp may be.
	ClockSkew Duration `toml:"clock_skew"`
	// MaxChannelBytes and MaxTotalBytes are the store's quotas.
	MaxChannelBytes int64 `toml:"max_channel_bytes"`
	MaxTotalBytes   int64 `toml:"max_total_bytes"`
	// MaxRegistrantBytes bounds what the channels charged to one user
	// other than the owner hold together; OwnerReservedBytes is the part
	// of MaxTotalBytes only the owner's channels may fill
	// (docs/SECURITY.md, "Storage quotas").
	MaxRegistrantBytes int64 `toml:"max_registrant_bytes"`
	OwnerReservedBytes int64 `toml:"owner_reserved_bytes"`
	// MaxConnections and MaxConnectionsPerIP bound libp2p connections.
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// LowDiskPercent warns when less than this share of the disk is free.
	LowDiskPercent float64 `toml:"low_disk_percent"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// BoardRoot is where the board's /proc and /sys are read ("/"); tests
	// point it at fixture trees.
	BoardRoot string `toml:"board_root"`
	// ShutdownTimeout bounds a graceful stop.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// Duration is a time.Duration written as "168h", "5m" in the file.
type Duration struct{ time.Duration }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("negative duration %s", v)
	}
	d.Duration = v
	return nil
}

// MarshalText writes Go duration syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Defaults returns the configuration of a node with no file, no
// environment and no flags.
func Defaults() Config {
	dataDir := "/var/lib/homenode"
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		dataDir = strings.Split(d, ":")[0]
	}
	return Config{
		DataDir:             dataDir,
		Listen:              append([]string(nil), p2p.DefaultListenAddrs...),
		HTTP:                "lan:8080",
		Capacity:            1000,
		UPnP:                true,
		Relay:               true,
		ChannelRate:         50,
		ChannelBurst:        500,
		Retention:           Duration{7 * 24 * time.Hour},
		ClockSkew:           Duration{5 * time.Minute},
		MaxChannelBytes:     256 << 20,
		MaxTotalBytes:       4 << 30,
		MaxRegistrantBytes:  512 << 20,
		OwnerReservedBytes:  1 << 30,
		MaxConnections:      2560,
		MaxConnectionsPerIP: 256,
		LowDiskPercent:      5,
		LogLevel:            "info",
		BoardRoot:           "/",
		ShutdownTimeout:     Duration{20 * time.Second},
	}
}

// adminSocketDefault is systemd's RuntimeDirectory when there is one, else
// a socket inside the data directory.
func (c *Config) adminSocketDefault() string {
	if d := os.Getenv("RUNTIME_DIRECTORY"); d != "" {
		return strings.Split(d, ":")[0] + "/admin.sock"
	}
	return c.DataDir + "/admin.sock"
}

// LoadFile applies the TOML file at path to c. A missing file is an error
// only when required. Unknown keys are errors: a typo must not be ignored.
func (c *Config) LoadFile(path string, required bool) error {
	md, err := toml.DecodeFile(path, c)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !required {
			return nil
		}
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys %s (docs/CONFIG.md lists the valid ones)", path, strings.Join(keys, ", "))
	}
	return nil
}

// LoadEnv applies HOMENODE_* variables from environ (os.Environ's form).
func (c *Config) LoadEnv(environ []string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	known := map[string]bool{}
	err := c.eachField(func(key string, f reflect.Value) error {
		name := EnvPrefix + strings.ToUpper(key)
		known[name] = true
		v, ok := env[name]
		if !ok {
			return nil
		}
		if err := setField(f, v); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, v, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k := range env {
		if !known[k] {
			return fmt.Errorf("environment %s: no such setting (docs/CONFIG.md lists them)", k)
		}
	}
	return nil
}

// Set applies one key=value (the file's key names), as the --set flag does.
func (c *Config) Set(key, value string) error {
	found := false
	err := c.eachField(func(k string, f reflect.Value) error {
		if k != key {
			return nil
		}
		found = true
		return setField(f, value)
	})
	if err != nil {
		return fmt.Errorf("setting %s=%q: %w", key, value, err)
	}
	if !found {
		return fmt.Errorf("no setting %q (docs/CONFIG.md lists them)", key)
	}
	return nil
}

// Keys lists every setting's key, in declaration order.
func Keys() []string {
	var keys []string
	var c Config
	c.eachField(func(k string, _ reflect.Value) error { keys = append(keys, k); return nil })
	return keys
}

func (c *Config) eachField(fn func(key string, f reflect.Value) error) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		key := t.Field(i).Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		if err := fn(key, v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

var durationType = reflect.TypeOf(Duration{})

func setField(f reflect.Value, s string) error {
	if f.Type() == durationType {
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return err
		}
		f.Set(reflect.ValueOf(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Slice:
		var list []string
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				list = append(list, part)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// Validate checks what can be checked before anything starts.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is empty"))
	}
	if c.Capacity < 1 {
		errs = append(errs, fmt.Errorf("capacity %d: must be at least 1", c.Capacity))
	}
	if c.Retention.Duration < time.Hour {
		errs = append(errs, fmt.Errorf("retention %s: must be at least 1h", c.Retention))
	}
	if c.MaxConnections < 16 || c.MaxConnectionsPerIP < 1 {
		errs = append(errs, fmt.Errorf("max_connections %d / max_connections_per_ip %d: too small", c.MaxConnections, c.MaxConnectionsPerIP))
	}
	if c.MaxRegistrantBytes < 0 || c.OwnerReservedBytes < 0 || c.OwnerReservedBytes >= c.MaxTotalBytes {
		errs = append(errs, fmt.Errorf("max_registrant_bytes %d / owner_reserved_bytes %d: must not be negative, and the reserve must be below max_total_bytes %d",
			c.MaxRegistrantBytes, c.OwnerReservedBytes, c.MaxTotalBytes))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "warning", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level %q: want debug, info, warn or error", c.LogLevel))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
