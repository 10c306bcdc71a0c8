#!/bin/sh
# Runs the real container engines against rcrun: podman (conmon),
# containerd with its runc shim and with rcrun's own shim, dockerd, and a
# single-node Docker Swarm, each with rcrun in place of runc
# (tests/engines/*.bats).
#
#   sh scripts/test-engines.sh [BATS FILE OR DIR...]   (default: tests/engines/)
#
# As root on a Debian 12 machine. Installs what it needs (Debian's podman,
# conmon, containerd, docker.io, bats, busybox-static, ...), builds the
# release binary, and runs bats. The engines start with their own data
# directories under a temp dir and are stopped, with every mount, cgroup,
# link and process they made, when each file ends. A missing package or
# program is a failure, never a skip. RCRUN=/path/to/rcrun tests another
# binary (it must be named rcrun) instead of building one.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
apt_install bats podman conmon catatonit containerd docker.io tini iproute2 \
    bsdutils procps
for p in bats podman conmon containerd ctr containerd-shim-runc-v2 dockerd \
    /usr/bin/docker script ip sha256sum; do
    command -v "$p" >/dev/null 2>&1 || die "missing after install: $p"
done
# Engines started by the packages' init scripts would share /run paths.
for d in dockerd containerd; do
    if pgrep -x "$d" >/dev/null; then
        echo "$0: note: a system $d is running; the tests start their own" >&2
    fi
done
if [ -z "${RCRUN:-}" ]; then
    build_release
    RCRUN=$RCRUN_BIN
fi
[ -x "$RCRUN" ] || die "no rcrun binary at $RCRUN"
export RCRUN
# rcrun's own containerd shim (tests/engines/containerd-shim.bats), built
# as it ships, next to rcrun.
if [ -z "${RCRUN_SHIM:-}" ]; then
    build_release containerd-shim-rcrun-v2
    RCRUN_SHIM=$BUILT_BIN
fi
[ -x "$RCRUN_SHIM" ] || die "no shim binary at $RCRUN_SHIM"
export RCRUN_SHIM
[ $# -gt 0 ] || set -- tests/engines/
echo "== engines against $RCRUN" >&2
exec bats --timing "$@"
