#!/bin/sh
# The image benchmark (issue 20), side by side in one run: the same
# generated image (3 gzip layers, 10,500 files, scripts/lib/make-image.py)
# unpacked into a bundle by rcrun, by umoci, and by plain `tar -xzf` of
# each layer in turn as the floor (no digests checked, no whiteouts);
# ROUNDS rounds in alternating order, medians and ratios printed; once
# onto the disk (ext4 here: the kernel's writeback dominates) and once
# into a tmpfs (the tools' own CPU time dominates). Then a
# second container's rootfs from the stored image: ImageStore::prepare
# (one overlay mount, no copying) and release, timed in-process.
# Targets: rcrun <= 0.5x umoci, <= 1.2x the tar floor; prepare < 5 ms.
#
#   sh scripts/bench-image.sh            ROUNDS=5 MB=300 (as root)
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
apt_install umoci python3
ROUNDS=${ROUNDS:-5}
build_release rcrun-image
build_release
cargo build --release --locked -q --example prepare_bench
W=$(mktemp -d /var/tmp/rcrun-bench-image.XXXXXX)
mkdir "$W/mem"
trap 'umount "$W/mem" 2>/dev/null; rm -rf "$W"' EXIT
mount -t tmpfs -o size=4g tmpfs "$W/mem"
echo "generating the image..." >&2
MB=${MB:-300} python3 scripts/lib/make-image.py "$W/img" >&2
L="$W/img"
blobs=$(python3 -c '
import json,sys
i=json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"][7:]
m=json.load(open(sys.argv[1]+"/blobs/sha256/"+i))
print(" ".join(l["digest"][7:] for l in m["layers"]))' "$L")
now() { date +%s%N; }
run_one() { # NAME DIR -> elapsed ms of one unpack into a fresh DIR
    d="$2"; rm -rf "$d"; sync
    t0=$(now)
    case $1 in
    rcrun) "$RCRUN_BIN" image unpack --quiet "oci:$L:bench" "$d" ;;
    umoci) umoci unpack --image "$L:bench" "$d" >/dev/null ;;
    tar) mkdir -p "$d/rootfs"; for b in $blobs; do tar -xzf "$L/blobs/sha256/$b" -C "$d/rootfs"; done ;;
    esac
    t1=$(now)
    echo $(( (t1 - t0) / 1000000 ))
}
: > "$W/times"
i=0
while [ $i -lt "$ROUNDS" ]; do
    # Alternate the order: no tool always runs on a warmer cache.
    if [ $((i % 2)) = 0 ]; then order="rcrun umoci tar"; else order="tar umoci rcrun"; fi
    for t in $order; do
        echo "disk $t $(run_one $t "$W/out")" >> "$W/times"
        rm -rf "$W/out"
        echo "tmpfs $t $(run_one $t "$W/mem/out")" >> "$W/times"
        rm -rf "$W/mem/out"
    done
    i=$((i + 1))
done
python3 - "$W/times" "$ROUNDS" <<'PY'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    w, k, v = line.split(); t.setdefault((w, k), []).append(int(v))
m = {k: statistics.median(v) for k, v in t.items()}
print("| unpack into (median of %s) | rcrun ms | umoci ms | tar floor ms | rcrun / umoci | rcrun / tar |" % sys.argv[2])
print("|---|---|---|---|---|---|")
for w in ("disk", "tmpfs"):
    r, u, f = m[(w, "rcrun")], m[(w, "umoci")], m[(w, "tar")]
    print("| %s | %d | %d | %d | %.2f | %.2f |" % (w, r, u, f, r / u, r / f))
PY
R="$W/store"
"$RCRUN_BIN" image --image-root "$R" --quiet import "oci:$L:bench" --name bench:1 >/dev/null
target/release/examples/prepare_bench "$R" bench:1 50 | python3 -c 'import json,sys; d=json.load(sys.stdin); print("\nsecond container rootfs from the store (median of %d): prepare %.2f ms, release %.2f ms" % (d["rounds"], d["prepare_ms"], d["release_ms"]))'
