#!/bin/sh
# The event source's benchmark (issue 19): N sleeping containers (500 by
# default) watched for IDLE seconds (60) by one rcrun::events::Events (one
# thread, one epoll fd), then by a thread per container blocked in
# OomWatch::wait (the baseline), side by side in one run. Prints the
# watcher's threads, RSS growth over the containers' handles, and CPU
# time while idle. Target: one thread, < 2 MiB RSS growth for 500, idle
# CPU indistinguishable from zero.
#
#   sh scripts/bench-events.sh            COUNT=500 IDLE=60 (as root)
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
COUNT=${COUNT:-500}
IDLE=${IDLE:-60}
cargo build --release --locked -q --example watch_bench
sh rootfs/build-busybox.sh target/test-bundle >/dev/null
W=$(mktemp -d /tmp/rcrun-bench-events.XXXXXX)
trap 'rm -rf "$W"' EXIT
echo "| watcher | containers | threads | RSS growth KiB | idle CPU ms over ${IDLE}s |"
echo "|---|---|---|---|---|"
for mode in events threads; do
    out=$(target/release/examples/watch_bench "$mode" "$COUNT" "$IDLE" \
        "$PWD/target/test-bundle/rootfs" "$W/$mode")
    echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("| %s | %d | %d | %d | %.3f |" % (d["mode"], d["containers"], d["threads"], d["rss_growth_kib"], d["idle_cpu_ms"]))'
done
