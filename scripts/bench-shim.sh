#!/bin/bash
# The shim's benchmark (issue 21): containerd-shim-rcrun-v2 beside Debian's
# containerd-shim-runc-v2 (Go, driving runc), in one run against one
# containerd started here (own root, state and sockets in a temp dir).
#   - memory: the shim's RSS with one running container, and with a pod
#     of 4 (the CRI sandbox-id annotation groups them under one shim):
#     at rest (2 s with no request; rcrun's shim gives back the pages of
#     its executable 0.5 s after the last one), right after a request
#     (containerd's State, from `ctr task ls`), and the private
#     (anonymous) part, which is what each more shim costs the node: the
#     executable's pages are shared by every shim of the same binary;
#   - start: `ctr run -d` until the process runs, ROUNDS times per shim,
#     interleaved; medians and the ratio.
# Targets: RSS at most 1/4 of the Go shim's, start at most 0.7x.
#
#   bash scripts/bench-shim.sh      ROUNDS=20 COUNT=4 (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
. scripts/lib/containerd.sh
ensure_deps
apt_install containerd
ROUNDS=${ROUNDS:-20}
COUNT=${COUNT:-4}
build_release containerd-shim-rcrun-v2
SHIM=$BUILT_BIN
E=$(mktemp -d /tmp/rcb-shim.XXXXXX)
NS=rcrun-bench-shim
ctr_() { ctr -a "$E/containerd.sock" -n "$NS" "$@"; }
cleanup() {
    for t in $(ctr_ task ls -q 2>/dev/null); do ctr_ task delete -f "$t" >/dev/null 2>&1 || true; done
    for c in $(ctr_ c ls -q 2>/dev/null); do ctr_ c rm "$c" >/dev/null 2>&1 || true; done
    [ -f "$E/containerd.pid" ] && kill "$(cat "$E/containerd.pid")" 2>/dev/null && sleep 1
    pkill -9 -f "$E/containerd.sock" 2>/dev/null || true
    awk -v e="$E" 'index($5, e) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
    for d in /sys/fs/cgroup/*/"$NS" /sys/fs/cgroup/unified/"$NS"; do
        [ -d "$d" ] && find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null; rmdir "$d" 2>/dev/null || true
    done
    rm -rf "$E" "/run/containerd/runc/$NS" "/run/containerd/rcrun/$NS"
}
trap cleanup EXIT
mkdir -p "$E/containerd/root" "$E/containerd/state" "$E/fifo"
containerd_toml "$E"
PATH="$(dirname "$SHIM"):$PATH" containerd --config "$E/containerd.toml" >"$E/containerd.log" 2>&1 &
echo $! >"$E/containerd.pid"
for _ in $(seq 100); do ctr -a "$E/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
# The busybox rootfs as a one-layer image.
sh rootfs/build-busybox.sh target/test-bundle >/dev/null
tar -C target/test-bundle/rootfs -cf "$E/rootfs.tar" .
python3 - "$E" <<'PY'
import hashlib, json, os, shutil, sys, tarfile
e = sys.argv[1]; d = e + "/oci"; b = d + "/blobs/sha256"; os.makedirs(b)
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(b + "/" + h, "wb").write(data); return h, len(data)
layer = open(e + "/rootfs.tar", "rb").read()
lh, ls = blob(layer)
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
cfg = json.dumps({"architecture": arch, "os": "linux", "config": {"Env": ["PATH=/bin:/sbin:/usr/bin"]},
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lh]}}).encode()
ch, cs = blob(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + ch, "size": cs},
                  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + lh, "size": ls}]}).encode()
mh, ms = blob(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mh,
           "size": ms, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
with tarfile.open(e + "/image.tar", "w") as t:
    for n in ("oci-layout", "index.json", "blobs"): t.add(d + "/" + n, n)
shutil.rmtree(d)
PY
ctr_ image import --base-name docker.io/library/bench "$E/image.tar" >/dev/null
IMG=docker.io/library/bench:latest
runtime_of() { [ "$1" = rcrun ] && echo io.containerd.rcrun.v2 || echo io.containerd.runc.v2; }
run_d() { # SHIM ID [ANNOTATION]
    ctr_ run -d --runtime "$(runtime_of "$1")" --fifo-dir "$E/fifo" ${3:+--annotation "$3"} "$IMG" "$2" sleep 100000 >/dev/null
}
rm_task() { ctr_ task delete -f "$1" >/dev/null 2>&1 || true; ctr_ c rm "$1" >/dev/null 2>&1 || true; }
shim_pid() { # TASK: the pid of the task's shim (a request to it)
    local pid
    pid=$(ctr_ task ls | awk -v t="$1" '$1 == t {print $2}')
    awk '/^PPid:/ {print $2}' "/proc/$pid/status"
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # PID FIELD
measure() { # SHIM TASK: "rest busy anon" KiB of the task's shim
    local p rest anon
    p=$(shim_pid "$2")
    sleep 2
    rest=$(status_kib "$p" VmRSS); anon=$(status_kib "$p" RssAnon)
    ctr_ task ls >/dev/null
    echo "$rest $(status_kib "$p" VmRSS) $anon"
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

# Warm-up: one of each (page cache, containerd's first snapshot).
for s in runc rcrun; do run_d "$s" "warm-$s"; rm_task "warm-$s"; done

declare -A one pod start
for s in runc rcrun; do
    run_d "$s" "one-$s"
    one[$s]=$(measure "$s" "one-$s")
    rm_task "one-$s"
    for i in $(seq "$COUNT"); do run_d "$s" "pod-$s-$i" "io.kubernetes.cri.sandbox-id=pod-$s"; done
    pod[$s]=$(measure "$s" "pod-$s-1")
    for i in $(seq "$COUNT"); do rm_task "pod-$s-$i"; done
done
for r in $(seq "$ROUNDS"); do
    for s in runc rcrun; do
        t0=$(date +%s%N)
        run_d "$s" "st-$s-$r"
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$E/start-$s"
        rm_task "st-$s-$r"
    done
done
for s in runc rcrun; do start[$s]=$(median <"$E/start-$s"); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "| | containerd-shim-runc-v2 (Go) + runc | containerd-shim-rcrun-v2 | ratio |"
echo "|---|---|---|---|"
row() { # LABEL GO RCRUN
    echo "| $1 | $2 KiB | $3 KiB | $(ratio "$3" "$2") |"
}
for k in one pod; do
    if [ $k = one ]; then what="1 container"; else what="pod of $COUNT"; fi
    declare -n m=$k
    read -r go_rest go_busy go_anon <<<"${m[runc]}"
    read -r rc_rest rc_busy rc_anon <<<"${m[rcrun]}"
    row "shim RSS at rest, $what" "$go_rest" "$rc_rest"
    row "shim RSS right after a request, $what" "$go_busy" "$rc_busy"
    row "shim private (anonymous) memory, $what" "$go_anon" "$rc_anon"
done
echo "| ctr run -d to running, median of $ROUNDS | $((start[runc] / 1000)) ms | $((start[rcrun] / 1000)) ms | $(ratio "${start[rcrun]}" "${start[runc]}") |"
