// Package status defines the node's status report: the one set of figures
// that the LAN status page, `homenode status`, the Prometheus metrics,
// systemd's STATUS= line and the owner's phone (over the owner protocol,
// package owner) all show, so that they never disagree.
//
// It is at the top level, not under appliance/, because the report is also
// a wire type: the phone side decodes and renders it and must not import
// the appliance. It holds plain data and formatting only. It must not know where the
// figures come from (node, board, procfs, provisioning) nor how they are
// served (HTTP, admin socket, sd_notify): the appliance implements Source.
package status
