package appliance

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigLayers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "homenode.toml")
	os.WriteFile(file, []byte("http = \"127.0.0.1:9000\"\ncapacity = 7\nretention = \"48h\"\npeers = [\"/ip4/1.2.3.4/tcp/1/p2p/x\"]\n"), 0o600)
	c := Defaults()
	if err := c.LoadFile(file, true); err != nil {
		t.Fatal(err)
	}
	if c.HTTP != "127.0.0.1:9000" || c.Capacity != 7 || c.Retention.Duration != 48*time.Hour || len(c.Peers) != 1 {
		t.Fatalf("file not applied: %+v", c)
	}
	if c.ClockSkew.Duration != 5*time.Minute {
		t.Fatal("a default was lost by loading the file")
	}
	err := c.LoadEnv([]string{"HOMENODE_CAPACITY=9", "HOMENODE_UPNP=false", "HOMENODE_LISTEN=/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Capacity != 9 || c.UPnP || !reflect.DeepEqual(c.Listen, []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}) {
		t.Fatalf("environment not applied: %+v", c)
	}
	if err := c.Set("clock_skew", "90s"); err != nil || c.ClockSkew.Duration != 90*time.Second {
		t.Fatalf("Set: %v %v", err, c.ClockSkew)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "c.toml")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	for _, tc := range []struct {
		name, want string
		run        func(c *Config) error
	}{
		{"unknown key", "unknown keys caapcity", func(c *Config) error { return c.LoadFile(write("caapcity = 3\n"), true) }},
		{"bad TOML", "c.toml", func(c *Config) error { return c.LoadFile(write("http = \n"), true) }},
		{"wrong type", "c.toml", func(c *Config) error { return c.LoadFile(write("capacity = \"many\"\n"), true) }},
		{"missing required file", "no such file", func(c *Config) error { return c.LoadFile(filepath.Join(dir, "nope.toml"), true) }},
		{"unknown env", "HOMENODE_CAPACTY", func(c *Config) error { return c.LoadEnv([]string{"HOMENODE_CAPACTY=3"}) }},
		{"bad env value", "HOMENODE_UPNP", func(c *Config) error { return c.LoadEnv([]string{"HOMENODE_UPNP=perhaps"}) }},
		{"negative duration", "negative", func(c *Config) error { return c.Set("retention", "-1h") }},
		{"unknown set", "no setting", func(c *Config) error { return c.Set("nope", "1") }},
		{"invalid", "capacity 0", func(c *Config) error { c.Capacity = 0; return c.Validate() }},
		{"bad log level", "log_level", func(c *Config) error { c.LogLevel = "loud"; return c.Validate() }},
		{"reserve not below the total", "owner_reserved_bytes", func(c *Config) error { c.OwnerReservedBytes = c.MaxTotalBytes; return c.Validate() }},
		{"negative registrant quota", "max_registrant_bytes", func(c *Config) error { c.MaxRegistrantBytes = -1; return c.Validate() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			err := tc.run(&c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	c := Defaults()
	if err := c.LoadFile(filepath.Join(dir, "absent.toml"), false); err != nil {
		t.Fatalf("a missing default file is not an error: %v", err)
	}
}

// Every key is documented with its default in docs/CONFIG.md, where a
// person looks for it.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(doc), "| `"+k+"` |") {
			t.Errorf("docs/CONFIG.md has no table row for %q", k)
		}
	}
	if len(Keys()) < 15 {
		t.Fatalf("only %d keys found", len(Keys()))
	}
}
