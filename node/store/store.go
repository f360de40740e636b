package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults for Options fields left zero.
const (
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultMaxChannelBytes = 256 << 20
	DefaultMaxTotalBytes   = 4 << 30
	DefaultLockTimeout     = 5 * time.Second
)

// maxBatch bounds how many writes share one transaction, so that a burst
// cannot hold tens of megabytes of dirty pages in memory on a small board.
const maxBatch = 256

// schemaVersion is the layout of the buckets below; bump it with a
// migration when the layout changes. Version 1 kept bodies in a bucket
// "msgs" keyed by message ID; Open migrates such a file (migrate.go).
const schemaVersion = 2

// Root bucket names.
//
// Bodies are keyed by an arrival sequence number, not by message ID: IDs
// are random hashes, so with bodies (~1.2 KB, three to a page) keyed by
// them every applied message dirtied, and often split, a different leaf
// page. Keyed by sequence, bodies are appended to the end of the bucket,
// full pages one after another; what stays random (ids) is small.
var (
	bInfo   = []byte("info")   // "schema" -> version; "totals" -> count|bytes
	bBody   = []byte("body")   // seq -> canonical envelope bytes
	bIDs    = []byte("ids")    // id -> seq
	bIdx    = []byte("idx")    // channel|ts|id -> seq|size (uint64|uint32)
	bChans  = []byte("chans")  // channel -> count|bytes|newest
	bFP     = []byte("fp")     // channel|hour -> count|xor(ids)
	bSync   = []byte("sync")   // len(peer)|peer|channel -> ms
	bMeta   = []byte("meta")   // name -> nested bucket of caller records
	kSchema = []byte("schema") // in bInfo
	kTotals = []byte("totals") // in bInfo

	rootBuckets = [][]byte{bInfo, bBody, bIDs, bIdx, bChans, bFP, bSync, bMeta}
)

// Options configure a DB. Zero fields take the defaults above.
type Options struct {
	Retention       time.Duration    // default 7*24h
	MaxChannelBytes int64            // per-channel quota (envelope bytes), default 256 MiB
	MaxTotalBytes   int64            // total budget (envelope bytes), default 4 GiB
	Now             func() time.Time // injectable clock; default time.Now
	Logger          *slog.Logger     // default slog.Default()
	// LockTimeout is how long Open waits for another process to release
	// the file lock before it fails with ErrLocked. Default 5 s.
	LockTimeout time.Duration
	// ClockTrusted, when set, is asked before every sweep: a node whose
	// clock is not synchronised yet (a Pi has no real-time clock) must not
	// expire messages by it, so Sweep then deletes nothing and returns
	// ErrClockUntrusted. Default: the clock is always trusted.
	ClockTrusted func() bool
	// MigrateProgress, when set, is called while Open migrates a file of
	// an older schema (which can take minutes on a Pi with a full store),
	// with the messages moved so far: after the first batch, then at most
	// every migrateReport. The appliance tells systemd the start is still
	// making progress.
	MigrateProgress func(moved int)
	// ReservedBytes is the part of MaxTotalBytes that only reserved
	// accounts (the owner's) may fill, once SetAccounts has given a plan
	// (quota.go). Default 0.
	ReservedBytes int64
}

func (o *Options) setDefaults() {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxChannelBytes <= 0 {
		o.MaxChannelBytes = DefaultMaxChannelBytes
	}
	if o.MaxTotalBytes <= 0 {
		o.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
}

// DB is an open message store. Its methods are safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string
	opt  Options
	log  *slog.Logger

	// mu guards closed and queue: writers and readers hold it shared for
	// the length of their operation, Close takes it exclusively, so Close
	// waits for everything in flight and nothing starts after it.
	mu     sync.RWMutex
	closed bool
	queue  chan *writeReq
	// committed is closed when the committer has drained the queue.
	committed chan struct{}
	// stop is closed by Close to end sweepers.
	stop chan struct{}

	// The write-ahead log (wal.go, wal_commit.go): Puts queue on puts for
	// putCommitter; acknowledged messages wait in pend until the applier
	// moves them into bbolt.
	puts     chan *putReq
	putsDone chan struct{}
	pend     pendingTable
	// walMu guards seg, nextSeq and walBroken: the committer holds it for
	// a whole batch, the applier only to switch segments.
	walMu     sync.Mutex
	seg       *segment // where Puts are appended; nil until the first
	nextSeq   uint64
	walBroken error
	nextGen   uint64 // the applier's next group generation
	// removedUnsynced is an applied segment removed since the data
	// directory was last synced (see removeSegment); the applier's alone.
	removedUnsynced string
	// kick wakes the applier after a batch; jobs runs work that must not
	// overlap an apply (flush, sweeping pending messages) in it; applierStop ends it (Close) and applierErr is its
	// last word, read after applierDone.
	kick        chan struct{}
	jobs        chan applierJob
	applierStop chan struct{}
	applierDone chan struct{}
	applierErr  error
	// filter holds every ID in bbolt (and some no longer there): the
	// duplicate checks read bbolt only for IDs it may hold (filter.go).
	filter atomic.Pointer[idFilter]
	// quota is the accounts plan and its cached usage (quota.go).
	quota quotaState
	// diskFullAt is when a write last failed for a full disk (unix ns).
	diskFullAt atomic.Int64
}

// writeReq is one write waiting for the group commit.
type writeReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// Open opens or creates the store at path. A file that is not a readable
// store fails with ErrCorrupt and an error naming the file and what to do;
// it is left untouched. If another process holds the file, Open fails with
// ErrLocked after Options.LockTimeout rather than hang.
func Open(path string, opt Options) (*DB, error) {
	opt.setDefaults()
	if err := clearUnwrittenFile(path, opt.Logger.With("component", "store")); err != nil {
		return nil, err
	}
	bdb, err := openBolt(path, opt.LockTimeout)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	db := &DB{
		bolt:        bdb,
		path:        path,
		opt:         opt,
		log:         opt.Logger.With("component", "store", "path", path),
		queue:       make(chan *writeReq, maxBatch),
		committed:   make(chan struct{}),
		stop:        make(chan struct{}),
		puts:        make(chan *putReq, maxPutBatch),
		putsDone:    make(chan struct{}),
		nextSeq:     1,
		kick:        make(chan struct{}, 1),
		jobs:        make(chan applierJob),
		applierStop: make(chan struct{}),
		applierDone: make(chan struct{}),
	}
	db.pend.cond = sync.NewCond(&db.pend.mu)
	db.quota.gen.Store(1)
	// The WAL is checked before anything is written, so a refusal leaves
	// every file as it was.
	segs, err := loadWAL(path)
	if err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.initSchema(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.bolt.View(func(tx *bolt.Tx) error { db.nextGen = getAppliedGen(tx) + 1; return nil }); err != nil {
		_ = bdb.Close()
		return nil, db.classify(err)
	}
	if err := db.rebuildFilter(true); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if err := db.replay(segs); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	if len(db.pend.groups) == 0 {
		db.pend.groups = []*group{newGroup()}
	}
	go db.committer()
	go db.putCommitter()
	go db.applier()
	return db, nil
}

// openBolt opens the file, turning a panic from a badly damaged file into
// an error.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("%w: %v", berrors.ErrInvalid, p)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         timeout,
		FreelistType:    bolt.FreelistMapType, // O(1) page allocation in a multi-GiB file
		InitialMmapSize: initialMmapSize,
	})
}

// initialMmapSize is the address space bbolt maps up front. Each time the
// file outgrows the map, the writer remaps it: it waits for every read
// transaction to end, blocks every new one (and so every Put, whose
// duplicate check reads) and copies its whole transaction out of the old
// map first, which for a WAL apply of thousands of messages took 50-300
// ms: the relay latency tail. Reserving the map costs address space, not
// memory (pages are loaded as touched, the file is not grown). A 32-bit
// board (armv7) has only 2-3 GiB of address space for everything, so it
// gets a modest reservation and remaps beyond it, rarely, as the map
// doubles.
var initialMmapSize = func() int {
	if strconv.IntSize == 32 {
		return 128 << 20
	}
	return 1 << 30
}()

// explainOpen turns an open failure into an error that says what to do.
func explainOpen(path string, err error) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("store: open %s: %w (is another homenode running? stop it first): %v", path, ErrLocked, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("store: open %s: %w; check that the file and its directory belong to the user running homenode", path, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("store: open %s: %w; create the data directory first", path, err)
	case isDiskFull(err):
		return fmt.Errorf("store: open %s: %w: %v", path, ErrDiskFull, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrInvalidMapping):
		return corruptError(path, err)
	default:
		// Anything else from bbolt while reading the file means we could
		// not make sense of it; say so rather than guess.
		return corruptError(path, err)
	}
}

func corruptError(path string, cause error) error {
	return fmt.Errorf("%w: %s (%v). The file was left untouched: stop homenode, move the file aside "+
		"(or restore it from a backup) and start again to begin with an empty store", ErrCorrupt, path, cause)
}

// initSchema creates the buckets of a new file and checks an existing
// one is a store of a layout this code understands.
func (db *DB) initSchema() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = corruptError(db.path, fmt.Errorf("panic reading the file: %v", p))
		}
	}()
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		info := tx.Bucket(bInfo)
		if info == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return corruptError(db.path, errors.New("a bbolt file without the store's schema record"))
			}
			for _, name := range rootBuckets {
				if _, err := tx.CreateBucket(name); err != nil {
					return err
				}
			}
			return tx.Bucket(bInfo).Put(kSchema, binary.BigEndian.AppendUint32(nil, schemaVersion))
		}
		v := info.Get(kSchema)
		if len(v) != 4 {
			return corruptError(db.path, errors.New("bad schema record"))
		}
		want := rootBuckets
		switch got := binary.BigEndian.Uint32(v); {
		case got == 1:
			want = v1Buckets
		case got == schemaVersion && info.Get(kMigrating) != nil:
			want = migratingBuckets
		case got != schemaVersion:
			return fmt.Errorf("store: %s has schema version %d, this homenode understands %d; "+
				"run the homenode version that wrote it, or move the file aside", db.path, got, schemaVersion)
		}
		for _, name := range want {
			if tx.Bucket(name) == nil {
				return corruptError(db.path, fmt.Errorf("bucket %q is missing", name))
			}
		}
		return nil
	})
	if err == nil {
		err = db.migrate()
	}
	if err != nil && !errors.Is(err, ErrCorrupt) && isDiskFull(err) {
		return fmt.Errorf("store: open %s: %w: %v", db.path, ErrDiskFull, err)
	}
	return err
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Close stops accepting work, waits for writes in flight to be durable,
// stops sweepers, applies the write-ahead log to the database, removes it
// and closes the file. Later calls return nil. If the log cannot be
// applied (a full disk) it stays beside the file, nothing in it is lost,
// and the next Open applies it: Close logs that and still succeeds.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.queue)
	close(db.puts)
	close(db.stop)
	db.mu.Unlock()
	<-db.committed
	<-db.putsDone
	close(db.applierStop)
	<-db.applierDone
	if err := db.applierErr; err != nil {
		db.log.Warn("write-ahead log not applied at close; the next start applies it", "err", err)
	}
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	return nil
}

// write runs fn in a durable write transaction, usually shared with other
// writers. fn may run more than once (when another write in its batch
// fails), so it must set its results afresh on each run.
func (db *DB) write(fn func(*bolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	db.queue <- req
	return <-req.done
}

// committer is the group commit: it takes every write waiting, runs them
// in one transaction and fsyncs once. Unlike bolt.DB.Batch it never waits
// for a timer, so a lone writer pays one fsync and no added delay, while
// concurrent writers share the fsync of the transaction they queued behind.
func (db *DB) committer() {
	defer close(db.committed)
	batch := make([]*writeReq, 0, maxBatch)
	for req := range db.queue {
		batch = drain(db.queue, append(batch[:0], req), maxBatch)
		db.commit(batch)
	}
}

// drain appends to batch whatever is already queued on q, up to max in
// all, without waiting: the group commits' way of taking company that is
// there but never waiting for it.
func drain[T any](q <-chan T, batch []T, max int) []T {
	for len(batch) < max {
		select {
		case r, ok := <-q:
			if !ok {
				return batch
			}
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit runs a batch. A write that fails is answered with its error and
// the others are retried without it, so one bad write cannot fail the
// rest. An error of the commit itself (a full disk) fails every write in
// the batch: none of them was acknowledged, none is stored.
func (db *DB) commit(batch []*writeReq) {
	for len(batch) > 0 {
		failed := -1
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			for i, r := range batch {
				if err := safeCall(r.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].done <- db.classify(err)
			batch = append(batch[:failed], batch[failed+1:]...)
			continue
		}
		err = db.classify(err)
		for _, r := range batch {
			r.done <- err
		}
		return
	}
}

// errPanicked marks a panic inside bbolt, which it raises on damaged pages.
var errPanicked = errors.New("bbolt panicked")

func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errPanicked, p)
		}
	}()
	return fn(tx)
}

// view runs a read-only transaction, turning bbolt's panics on damaged
// pages into ErrCorrupt.
func (db *DB) view(fn func(*bolt.Tx) error) error {
	db.mu.RLock()
	defer db.mu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	return db.classify(db.bolt.View(func(tx *bolt.Tx) error { return safeCall(fn, tx) }))
}

// classify maps bbolt and system errors to the package's sentinels.
func (db *DB) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExists),
		errors.Is(err, ErrQuotaExceeded), errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, ErrCorrupt):
		return err
	case errors.Is(err, errPanicked):
		db.log.Error("database damaged", "err", err)
		return corruptError(db.path, err)
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	case isDiskFull(err):
		db.diskFullAt.Store(time.Now().UnixNano())
		db.log.Error("disk full: write refused, stored messages are intact", "err", err)
		return fmt.Errorf("store: write to %s: %w (free some space or lower the total quota): %v", db.path, ErrDiskFull, err)
	default:
		return fmt.Errorf("store: %s: %w", db.path, err)
	}
}

// isDiskFull recognises ENOSPC/EDQUOT, also where bbolt formats the cause
// with %s (growing the file) and the chain is lost.
func isDiskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, syscall.ENOSPC.Error()) || strings.Contains(s, syscall.EDQUOT.Error())
}

// Check walks every page of the file (bbolt's consistency check) and
// returns ErrCorrupt naming the file if anything is wrong. It reads the
// whole file: an admin or test tool, not something to run on each start.
func (db *DB) Check() error {
	var errs []string
	// In a write transaction: bbolt checks pages against the live
	// freelist, and in a read transaction a commit running beside it (the
	// WAL applier's) frees pages the reader still reaches, which Check
	// would report as damage that is not there.
	err := db.write(func(tx *bolt.Tx) error {
		errs = errs[:0]
		for e := range tx.Check() {
			errs = append(errs, e.Error())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return corruptError(db.path, errors.New(strings.Join(errs, "; ")))
	}
	return nil
}
