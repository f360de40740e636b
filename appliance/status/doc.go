// Package status defines the appliance's status report: the one set of
// figures that the LAN status page, `homenode status`, the Prometheus
// metrics and systemd's STATUS= line all show, so that they never disagree.
//
// It holds plain data and formatting only. It must not know where the
// figures come from (node, board, procfs, provisioning) nor how they are
// served (HTTP, admin socket, sd_notify): the appliance implements Source.
package status
