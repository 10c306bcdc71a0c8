#!/bin/sh
# Builds rcrun and runs a real container on the embedded busybox rootfs.
#
#   sh scripts/demo.sh
#
# Installs what it needs (gcc, busybox-static, a Rust toolchain when the
# machine has none), builds the release binary, makes a bundle with
# `rcrun spec`, and runs it with `rcrun run`: the container prints from
# inside its own namespaces and is deleted when it exits.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
build_release
RCRUN=$RCRUN_BIN
B=target/demo-bundle
rm -f "$B/config.json"
RCRUN=$RCRUN rootfs/build-busybox.sh "$B" >/dev/null
cat > "$B/rootfs/demo.sh" <<'DEMO'
echo "hello from inside the container \"$(hostname)\""
echo "  pid $$ in its own pid namespace; processes visible: $(ls /proc | grep -c '^[0-9]')"
echo "  user: $(id)"
echo "  $(grep CapEff /proc/self/status)"
echo "  root is read-only: $(touch /x 2>/dev/null && echo no || echo yes)"
echo "  cgroup: $(grep pids /proc/self/cgroup)"
DEMO
# The default spec runs `sh` on a terminal: run the script without one.
sed -i -e 's/"terminal": true/"terminal": false/' -e 's|^\( *\)"sh"$|\1"sh", "/demo.sh"|' "$B/config.json"
exec "$RCRUN" run --bundle "$B" "rcrun-demo-$$"
