// Command rpupdate is the release maker's tool for the home node's A/B
// firmware updates, run on a build machine (make image, make bundle, make
// update-test call it):
//
//	rpupdate keygen -o NAME                      NAME.key (keep offline) and NAME.pub
//	rpupdate endorse -key OLD.key -pub NEW.pub -o NEW.endorsement
//	rpupdate bundle -image ROOT.ext4 -version V -compatible BOARD -key K.key
//	                [-endorsement F]... [-notes TEXT] -o OUT.rpb
//	rpupdate inspect [-keyring DIR] FILE.rpb     manifest, signatures, verification
//	rpupdate feed -key K.key -base URL -o feed.json BUNDLE.rpb...
//	rpupdate bootenv -disk IMG [-init] [-set NAME=VALUE]... [-print]
//
// It never runs on the box: the box only verifies (homenode update).
package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/redpanda-p2p/homenode/update"
	"github.com/redpanda-p2p/homenode/update/bootenv"
	"github.com/redpanda-p2p/homenode/update/bundle"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rpupdate:", err)
		os.Exit(1)
	}
}

const usage = `usage: rpupdate COMMAND [FLAGS]

commands:
  keygen    a release key pair (NAME.key, to keep offline, and NAME.pub)
  endorse   sign a new release key with the old one (key rotation)
  bundle    a signed update bundle of a root slot image
  inspect   print and verify a bundle
  feed      a signed release feed listing bundles
  bootenv   read or write the boot state of a disk image
`

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("rpupdate "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	switch cmd {
	case "keygen":
		out := fs.String("o", "", "NAME: writes NAME.key and NAME.pub")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return keygen(*out, stdout)
	case "endorse":
		key := fs.String("key", "", "the old (trusted) release key, PKCS #8 PEM")
		pub := fs.String("pub", "", "the new release key's public key, PEM")
		out := fs.String("o", "", "output file")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return endorse(*key, *pub, *out)
	case "bundle":
		var o bundleOpts
		fs.StringVar(&o.image, "image", "", "root slot image (ext4)")
		fs.StringVar(&o.version, "version", "", "Debian version of the release")
		fs.StringVar(&o.compatible, "compatible", "rpi-arm64", "board")
		fs.Var(&o.keys, "key", "signing key, PKCS #8 PEM (repeatable: sign with old and new during a rotation)")
		fs.Var(&o.endorsements, "endorsement", "key endorsement to carry (from rpupdate endorse; repeatable)")
		fs.StringVar(&o.notes, "notes", "", "release notes shown to the owner")
		fs.StringVar(&o.out, "o", "", "output bundle")
		fs.StringVar(&o.compression, "compression", bundle.CompressionZstd, "zstd or none")
		fs.StringVar(&o.level, "level", "better", "zstd level: fastest, default, better or best (smaller, several times slower)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return makeBundle(o, stdout)
	case "inspect":
		keyring := fs.String("keyring", "", "directory of trusted NAME.pub keys; verifies the signature and payload")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errors.New("inspect takes one bundle")
		}
		return inspect(fs.Arg(0), *keyring, stdout)
	case "feed":
		key := fs.String("key", "", "signing key, PKCS #8 PEM")
		base := fs.String("base", "", "URL the bundles are served under")
		out := fs.String("o", "", "output feed")
		ttl := fs.Duration("valid", 14*24*time.Hour, "how long the feed is valid")
		var endorsements listFlag
		fs.Var(&endorsements, "endorsement", "key endorsement to carry (repeatable)")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return makeFeed(*key, *base, *out, *ttl, endorsements, fs.Args())
	case "bootenv":
		disk := fs.String("disk", "", "disk image (or device)")
		init := fs.Bool("init", false, "write both copies (a new image): order A B, A 3 boots, B none")
		var set listFlag
		fs.Var(&set, "set", "NAME=VALUE to save (repeatable)")
		print := fs.Bool("print", false, "print the state")
		if err := fs.Parse(args); err != nil {
			return err
		}
		return bootEnv(*disk, *init, set, *print, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func keygen(name string, stdout io.Writer) error {
	if name == "" {
		return errors.New("keygen: -o NAME is required")
	}
	priv, pub, err := bundle.GenerateKey()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		b    []byte
		mode os.FileMode
	}{{name + ".key", priv, 0o600}, {name + ".pub", pub, 0o644}} {
		fh, err := os.OpenFile(f.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.mode)
		if err != nil {
			return fmt.Errorf("keygen: %w (not overwriting a key)", err)
		}
		if _, err := fh.Write(f.b); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	k, _ := bundle.ParsePublicKey(pub)
	fmt.Fprintf(stdout, "key %s: %s.key (private: keep it offline) and %s.pub\n", bundle.IDOf(k), name, name)
	return nil
}

func readPrivate(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := bundle.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func endorse(keyPath, pubPath, out string) error {
	if keyPath == "" || pubPath == "" || out == "" {
		return errors.New("endorse: -key, -pub and -o are required")
	}
	k, err := readPrivate(keyPath)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(pubPath)
	if err != nil {
		return err
	}
	pub, err := bundle.ParsePublicKey(b)
	if err != nil {
		return err
	}
	e, err := json.MarshalIndent(bundle.Endorse(k, pub), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(e, '\n'), 0o644)
}

func readEndorsements(paths []string) ([]bundle.Endorsement, error) {
	var es []bundle.Endorsement
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var e bundle.Endorsement
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		es = append(es, e)
	}
	return es, nil
}

type bundleOpts struct {
	image, version, compatible, notes, out, compression, level string
	keys, endorsements                                         listFlag
}

func makeBundle(o bundleOpts, stdout io.Writer) error {
	if o.image == "" || o.version == "" || o.out == "" || len(o.keys) == 0 {
		return errors.New("bundle: -image, -version, -key and -o are required")
	}
	var signers []ed25519.PrivateKey
	for _, p := range o.keys {
		k, err := readPrivate(p)
		if err != nil {
			return err
		}
		signers = append(signers, k)
	}
	es, err := readEndorsements(o.endorsements)
	if err != nil {
		return err
	}
	level, ok := map[string]zstd.EncoderLevel{"fastest": zstd.SpeedFastest, "default": zstd.SpeedDefault,
		"better": zstd.SpeedBetterCompression, "best": zstd.SpeedBestCompression}[o.level]
	if !ok {
		return fmt.Errorf("bundle: -level %q: fastest, default, better or best", o.level)
	}
	img, err := os.Open(o.image)
	if err != nil {
		return err
	}
	defer img.Close()
	tmp, err := os.CreateTemp(filepath.Dir(o.out), ".payload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	partial := o.out + ".partial"
	out, err := os.Create(partial)
	if err != nil {
		return err
	}
	defer os.Remove(partial)
	start := time.Now()
	m, err := bundle.Create(out, img, tmp, bundle.Options{Compatible: o.compatible, Version: o.version, Notes: o.notes,
		Signers: signers, Endorsements: es, Compression: o.compression, Level: level})
	if err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := os.Rename(partial, o.out); err != nil {
		return err
	}
	st, _ := os.Stat(o.out)
	fmt.Fprintf(stdout, "%s: version %s for %s, image %d bytes, bundle %d bytes (%.1f%%), %s\n", o.out, m.Version, m.Compatible,
		m.Image.Size, st.Size(), 100*float64(st.Size())/float64(m.Image.Size), time.Since(start).Round(time.Second))
	return nil
}

func inspect(path, keyringDir string, stdout io.Writer) error {
	kr := bundle.NewKeyring()
	if keyringDir != "" {
		var err error
		if kr, err = bundle.LoadKeyring(keyringDir); err != nil {
			return err
		}
	}
	b, f, err := bundle.OpenFile(path, kr)
	if keyringDir == "" && errors.Is(err, bundle.ErrUntrustedKey) {
		fmt.Fprintln(stdout, "(no -keyring: signatures not checked)")
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	m, _ := json.MarshalIndent(b.Manifest, "", "  ")
	fmt.Fprintf(stdout, "%s\nsigned by %v\n", m, b.SignedBy)
	if err := b.VerifyPayload(nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "payload verified")
	return nil
}

func makeFeed(keyPath, base, out string, ttl time.Duration, endorsements, bundles []string) error {
	if keyPath == "" || base == "" || out == "" || len(bundles) == 0 {
		return errors.New("feed: -key, -base, -o and at least one bundle are required")
	}
	k, err := readPrivate(keyPath)
	if err != nil {
		return err
	}
	es, err := readEndorsements(endorsements)
	if err != nil {
		return err
	}
	kr := bundle.NewKeyring(k.Public().(ed25519.PublicKey))
	feed := bundle.Feed{Format: 1, Issued: time.Now().UTC().Truncate(time.Second)}
	feed.Expires = feed.Issued.Add(ttl)
	for _, p := range bundles {
		b, f, err := bundle.OpenFile(p, kr)
		if err != nil {
			return fmt.Errorf("%s: %w (a feed lists bundles signed by its own key)", p, err)
		}
		st, _ := f.Stat()
		sum, err := bundle.FileSHA256(f)
		f.Close()
		if err != nil {
			return err
		}
		feed.Releases = append(feed.Releases, bundle.Release{Version: b.Manifest.Version, Compatible: b.Manifest.Compatible,
			URL: strings.TrimSuffix(base, "/") + "/" + filepath.Base(p), Size: st.Size(), SHA256: sum, Notes: b.Manifest.Notes})
	}
	sort.Slice(feed.Releases, func(i, j int) bool {
		return bundle.CompareVersions(feed.Releases[i].Version, feed.Releases[j].Version) < 0
	})
	signed, err := bundle.SignFeed(feed, []ed25519.PrivateKey{k}, es)
	if err != nil {
		return err
	}
	return os.WriteFile(out, signed, 0o644)
}

func bootEnv(disk string, init bool, set []string, print bool, stdout io.Writer) error {
	if disk == "" {
		return errors.New("bootenv: -disk is required")
	}
	st := bootenv.Default(disk)
	if init {
		b := update.Boot{Order: []update.Slot{update.SlotA, update.SlotB}, Left: map[update.Slot]int{update.SlotA: update.CommittedTries, update.SlotB: 0}}
		if err := st.Init(b.Env()); err != nil {
			return err
		}
	}
	if len(set) > 0 {
		prev, err := st.Load()
		if err != nil && prev.Env != nil {
			return err
		}
		env := prev.Env.Clone()
		for _, kv := range set {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("bootenv: -set %q: want NAME=VALUE", kv)
			}
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		if _, err := st.Save(prev, env); err != nil {
			return err
		}
	}
	if print {
		s, err := st.Load()
		for i, c := range s.Copies {
			status := "valid"
			if c.Err != nil {
				status = c.Err.Error()
			}
			fmt.Fprintf(stdout, "copy %d: flags %d, %s\n", i, c.Flags, status)
		}
		if err != nil {
			return err
		}
		names := make([]string, 0, len(s.Env))
		for k := range s.Env {
			names = append(names, k)
		}
		sort.Strings(names)
		var buf bytes.Buffer
		for _, k := range names {
			fmt.Fprintf(&buf, "%s=%s\n", k, s.Env[k])
		}
		fmt.Fprintf(stdout, "current: copy %d\n%s", s.Current, buf.String())
	}
	return nil
}
