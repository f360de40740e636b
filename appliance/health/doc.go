// Package health samples the figures the owner and the status page need
// to judge whether the box is well: this process's memory, open files and
// CPU time; the system's load, memory and network bytes; free space where
// the data directory lives; the board's temperature and throttling; and
// whether the system clock can be trusted.
//
// A Snapshot carries the figures and Warnings, each a plain sentence for
// the status page and the journal. A figure that cannot be read is an
// error, never a silent zero, and a read that hangs (a wedged /proc)
// returns ErrWedged instead of blocking the caller.
//
// It must not know about the redPanda protocol, metrics formats or HTTP:
// callers turn a Snapshot into Prometheus metrics, STATUS= lines or HTML.
// The node itself consults ClockSynced, never the other way round.
package health
