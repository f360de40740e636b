// Package packaging builds the homenode Debian package (build-deb.sh,
// debian/, the default homenode.toml conffile) and tests the result with
// dpkg-deb. It has no Go API. It must not know the daemon's internals,
// only the files it installs and where systemd expects them.
package packaging
