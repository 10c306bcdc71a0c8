#!/bin/sh
# Benchmarks rcrun against crun and runc, side by side (issue 7).
#
#   sh scripts/bench.sh                 (as root, on a Debian 12 machine)
#
# Installs Debian's runc, crun, hyperfine and GNU time when missing, builds
# rcrun in release mode, builds the busybox bundle, and runs, for every
# runtime in one hyperfine run per scenario (warm-up, unique container ids):
#
#   run     `run` of /bin/true to completion (run deletes it)
#   csd     create, start, delete -f (as youki's README measures it)
#   exec    `exec` of /bin/true into a running container
#   par50   50 containers `run` 8 at a time (each deleted): wall time
#   rss     peak RSS of `run` (GNU time %M; max and median over runs)
#   floor   `run` again, rcrun's variants against the unshare floor only,
#           interleaved in random order (scripts/lib/interleave.py: one
#           run of each per round; medians and per-round ratios), with the
#           cgroup warmer (below) paused
#
# with the floors (no runtime) in the same hyperfine runs: the same
# namespaces and chroot with `unshare` alone, `nsenter` into a running
# container, and a plain fork-exec of /bin/true. It prints a table with
# mean ± stddev and the ratio to the fastest runtime, and whether rcrun
# meets the issue's targets.
#
# Every runtime gets the same work: the same config.json (written by
# `rcrun spec`: pid, net, ipc, uts and mount namespaces, read-only
# busybox root, the spec's default mounts and devices rule, args
# /bin/true, no terminal), an absolute cgroupsPath per container under
# /rcrunbench/, cgroupfs cgroups on every controller of the host, and
# its own --root state directory on a tmpfs (as /run is on a node; this
# machine's /tmp is a journal-less ext4, where every new inode costs a
# scan for recently deleted ones). All of it runs inside one private mount
# namespace (`unshare -m --propagation private`): on a cgroup v1 hybrid
# host, crun refuses to work while /sys/fs/cgroup/unified/cgroup.controllers
# lists a controller, so an empty file is bind-mounted over it there, in
# that namespace only; the host is not changed.
#
# Knobs (environment):
#   RUNTIMES="rcrun rcrun-ro crun runc"
#                               runtimes to compare; rcrun-ro is the same
#                               binary bind-mounted read-only onto itself
#                               (a node's read-only /usr): no re-exec;
#                               NAME=PATH adds another
#                               binary (e.g. rcrun-old=/tmp/rcrun), which
#                               gets rcrun's flags when NAME starts with rcrun
#   RUNS=30 WARMUP=3            hyperfine runs for run, csd and exec
#   PAR_RUNS=10 RSS_RUNS=10     runs of the 50-container and RSS scenarios
#   SCENARIOS="run csd exec par50 rss floor"
#   FLOOR_ROUNDS=300 FLOOR_WARMUP=10
#                               rounds of the interleaved floor scenario
#   WARM=1                      keep the kernel's cgroup migration lock
#                               "hot" (see below); WARM=0 to measure without
#   GAP_MS=0                    idle time before each timed run of every
#                               scenario (hyperfine --prepare)
#
# The cgroup migration lock. Every runtime moves the container's init
# into its cgroup by writing cgroup.procs, which takes the kernel's
# cgroup_threadgroup_rwsem for writing; when no such write happened in
# the last ~20 ms, that waits for an RCU grace period (6 to 30 ms here,
# idle time, not CPU). Back-to-back runs of a fast runtime stay inside
# the window and a slower one falls out of it, which makes the results
# bimodal and unfair. With WARM=1 (the default) a helper moves itself
# between two cgroups under /rcrunbench every 4 ms, so no runtime waits
# and the table shows each runtime's own work; WARM=0 GAP_MS=100 shows
# what an isolated container start costs, grace period included.
# The warmer is there for the runtimes that move the init with cgroup.procs
# (crun and runc). rcrun does not (CLONE_INTO_CGROUP on cgroup2, a `tasks`
# write of the one thread on v1), and neither does unshare, so the floor
# scenario, which compares only those two, pauses it: its wake-ups every
# 4 ms take CPU time, and its cgroup.procs writes hold the kernel's
# cgroup_mutex, sometimes for a whole grace period, while rcrun waits to
# make or remove its cgroups (this machine: +0.45 ms on rcrun's median,
# +1 ms on its mean, nothing on the floor's).
#   RCRUN=/path/to/rcrun        skip the build and use this binary
#   OUT=DIR                     keep hyperfine's JSON and the table there
#
# Cleans up every container, cgroup and state directory it made, also
# when interrupted or when a runtime fails.
set -eu

if [ "${1:-}" != --inner ]; then
    cd "$(dirname "$0")/.."
    REPO=$PWD
    . scripts/lib/deps.sh
    ensure_deps
    apt_install runc crun hyperfine time jq util-linux python3
    if [ -z "${RCRUN:-}" ]; then
        echo "building rcrun (release)" >&2
        build_release
        RCRUN=$RCRUN_BIN
    fi
    [ -x "$RCRUN" ] || die "no rcrun binary at $RCRUN"
    W=$(mktemp -d /tmp/rcrunbench.XXXXXX)
    export REPO RCRUN W
    # shellcheck disable=SC2317
    outer_cleanup() {
        trap - EXIT INT TERM HUP
        # The inner script cleans up after itself; this catches what a
        # killed inner run left: processes in our cgroups, the cgroups.
        for f in /sys/fs/cgroup/rcrunbench/*/cgroup.procs /sys/fs/cgroup/*/rcrunbench/*/cgroup.procs; do
            [ -e "$f" ] || continue
            for p in $(cat "$f" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        done
        sleep 0.2
        for d in /sys/fs/cgroup/rcrunbench /sys/fs/cgroup/*/rcrunbench; do
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        done
        rm -rf "$W"
    }
    trap outer_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    rc=0
    unshare -m --propagation private sh "$REPO/scripts/bench.sh" --inner || rc=$?
    exit $rc
fi

# ---- inside the private mount namespace ----------------------------------
RUNTIMES=${RUNTIMES:-rcrun rcrun-ro crun runc}
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
PAR_RUNS=${PAR_RUNS:-10}
RSS_RUNS=${RSS_RUNS:-10}
SCENARIOS=${SCENARIOS:-run csd exec par50 rss floor}
FLOOR_ROUNDS=${FLOOR_ROUNDS:-300}
FLOOR_WARMUP=${FLOOR_WARMUP:-10}
OUT=${OUT:-$W/out}
mkdir -p "$OUT" "$W/b" "$W/n" "$W/state"
mount -t tmpfs -o mode=0711 rcrunbench-state "$W/state"

say() { echo "== $*" >&2; }

# name=path pairs -> "name path" lines; global flags per runtime.
rt_path() {
    case $1 in
        *=*) echo "${1#*=}" ;;
        rcrun) echo "$RCRUN" ;;
        rcrun-ro) echo "$W/ro/rcrun" ;;
        *) command -v "$1" || echo "/nonexistent/$1" ;;
    esac
}
rt_name() { echo "${1%%=*}"; }
rt_cmd() {   # rt_cmd NAME PATH: the runtime with its global flags
    case $1 in
        crun*) echo "$2 --root $W/state/$1 --cgroup-manager=cgroupfs" ;;
        *) echo "$2 --root $W/state/$1" ;;
    esac
}

cleanup() {
    trap - EXIT INT TERM HUP
    set +e
    [ -n "${WARMER:-}" ] && kill "$WARMER" 2>/dev/null && wait "$WARMER" 2>/dev/null
    for r in $RUNTIMES; do
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        [ -d "$W/state/$n" ] || continue
        for id in $($c list -q 2>/dev/null); do
            $c delete -f "$id" >/dev/null 2>&1
        done
    done
    for f in /sys/fs/cgroup/rcrunbench/*/cgroup.procs /sys/fs/cgroup/*/rcrunbench/*/cgroup.procs; do
        [ -e "$f" ] || continue
        for p in $(cat "$f" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    sleep 0.2
    for d in /sys/fs/cgroup/rcrunbench /sys/fs/cgroup/*/rcrunbench; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    if mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        umount /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The crun work-around, in this namespace only (see the header).
HYBRID=""
CTRL=/sys/fs/cgroup/unified/cgroup.controllers
if [ -e "$CTRL" ] && [ -n "$(cat "$CTRL")" ]; then
    : > "$W/empty"
    mount --bind "$W/empty" "$CTRL"
    HYBRID="cgroup v1 hybrid: empty file bound over $CTRL in the benchmark's private mount namespace (for crun)"
fi

# rcrun-ro: a copy of rcrun on a read-only bind mount, in this namespace.
if echo " $RUNTIMES " | grep -q " rcrun-ro "; then
    mkdir -p "$W/ro" && cp "$RCRUN" "$W/ro/rcrun"
    mount --bind "$W/ro/rcrun" "$W/ro/rcrun"
    mount -o remount,bind,ro "$W/ro/rcrun"
fi

# The cgroup warmer (see the header): perl is in every Debian (perl-base).
WARM=${WARM:-1}
WARMER=""
if [ "$WARM" = 1 ]; then
    for d in /sys/fs/cgroup/pids /sys/fs/cgroup/unified /sys/fs/cgroup; do
        if [ -e "$d/cgroup.procs" ] && mkdir -p "$d/rcrunbench/warm-a" "$d/rcrunbench/warm-b" 2>/dev/null; then
            perl -e 'my ($a, $b) = @ARGV;
                while (1) { for my $d ($a, $b) {
                    open(my $f, ">", "$d/cgroup.procs") or exit 1; print $f "$$"; close($f);
                    select(undef, undef, undef, 0.004); } }' \
                "$d/rcrunbench/warm-a" "$d/rcrunbench/warm-b" </dev/null >/dev/null 2>&1 &
            WARMER=$!
            break
        fi
    done
fi

# The bundle: busybox rootfs, config.json from `rcrun spec`.
RCRUN=$RCRUN "$REPO/rootfs/build-busybox.sh" "$W/bundle" >/dev/null
ROOTFS=$W/bundle/rootfs
jq --arg root "$ROOTFS" '
    .process.terminal = false | .process.args = ["/bin/true"]
    | .root.path = $root | .linux.cgroupsPath = "@CG@"' \
    "$W/bundle/config.json" > "$W/template.json"
jq '.process.args = ["sleep", "1000000"]' "$W/template.json" > "$W/template-sleep.json"

# mkbundles NAME COUNT [TEMPLATE]: bundles $W/b/NAME-1..COUNT whose
# cgroupsPath is /rcrunbench/NAME-i; all share the read-only rootfs.
mkbundles() {
    seq 1 "$2" | sed "s|^|$W/b/$1-|" | xargs mkdir -p
    awk -v p="$W/b/$1" -v c="/rcrunbench/$1" -v n="$2" -v t="${3:-$W/template.json}" '
        BEGIN { while ((getline l < t) > 0) s = s l "\n"
                for (i = 1; i <= n; i++) { f = p "-" i "/config.json"; x = s
                    gsub(/@CG@/, c "-" i, x); printf "%s", x > f; close(f) } }'
    echo 1 > "$W/n/$1"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }

HF="hyperfine --style basic --warmup $WARMUP --runs $RUNS"
GAP_MS=${GAP_MS:-0}
PREP=""
[ "$GAP_MS" -gt 0 ] && PREP="sleep $(awk -v m="$GAP_MS" 'BEGIN { printf "%.3f", m / 1000 }')"
# The floor gets the namespaces the config asks for, as the runtimes do.
NSFLAGS=$(jq -r '[.linux.namespaces[].type | {pid: "--pid", network: "--net",
    ipc: "--ipc", uts: "--uts", mount: "--mount", cgroup: "--cgroup", user: "--user"}[.]
    // empty] | join(" ")' "$W/template.json")
UNSHARE="unshare --fork $NSFLAGS --mount-proc chroot $ROOTFS /bin/true"
FAILED=""

# hf SCENARIO ARGS...: one hyperfine run; JSON to $OUT/SCENARIO.json.
hf() {
    s=$1; shift
    say "$s (load average $(load))"
    [ -n "$PREP" ] && set -- "$@" --prepare "$PREP"
    if "$@" --export-json "$OUT/$s.json" >&2; then
        load > "$OUT/$s.load"
    else
        echo "hyperfine failed for $s" >&2
        FAILED="$FAILED $s"; rm -f "$OUT/$s.json"
    fi
}

# per_runtime SCENARIO TEMPLATE FLOOR: one hyperfine command per runtime,
# each run with a fresh bundle and id; TEMPLATE uses $c (the runtime's
# command line), $b (the bundle) and $id, expanded when the command runs.
# The unshare floor (FLOOR) runs in the same hyperfine run behind the same
# shell bookkeeping (a counter file read and written, the variables set):
# hyperfine subtracts only the cost of starting the shell, and the
# bookkeeping (0.2 ms) would otherwise count for the runtimes alone.
per_runtime() {
    scen=$1 tmpl=$2 floor=$3
    set --
    for r in $RUNTIMES; do
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        mkbundles "$n-$scen" $((RUNS + WARMUP + 2))
        set -- "$@" -n "$n" "read i < $W/n/$n-$scen; echo \$((i+1)) > $W/n/$n-$scen; c='$c'; b=$W/b/$n-$scen-\$i; id=rcb-$n-$scen-\$i; $tmpl"
    done
    echo 1 > "$W/n/floor-$scen"
    hf "$scen" $HF "$@" -n "floor: unshare+chroot" \
        "read i < $W/n/floor-$scen; echo \$((i+1)) > $W/n/floor-$scen; c=''; b=$W/b/floor-$scen-\$i; id=rcb-floor-$scen-\$i; $floor"
}

# Scenario 1: run of /bin/true (deleted by run). `exec`: the shell does
# not wait in between (it would fork for the last command otherwise).
if echo "$SCENARIOS" | grep -qw run; then
    per_runtime run 'exec $c run -b $b $id' "exec $UNSHARE"
fi

# Scenario 1 again, for the floor target: rcrun's variants and the unshare
# floor only, the warmer paused (see the header). Not hyperfine: the two
# are 1.5 ms apart on a host whose speed drifts by more than that between
# one hyperfine command and the next, so each round runs every command
# once, in a new random order, and the target is the median of the
# per-round ratios (scripts/lib/interleave.py).
if echo "$SCENARIOS" | grep -qw floor; then
    set --
    for r in $RUNTIMES; do
        case $r in rcrun*) ;; *) continue ;; esac
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        mkbundles "$n-floor" $((FLOOR_ROUNDS + FLOOR_WARMUP))
        set -- "$@" "$n=$c run -b $W/b/$n-floor-{i} rcb-$n-floor-{i}"
    done
    [ -n "$WARMER" ] && kill -STOP "$WARMER"
    say "floor, interleaved, $FLOOR_ROUNDS rounds (load average $(load))"
    if python3 "$REPO/scripts/lib/interleave.py" --rounds "$FLOOR_ROUNDS" \
        --warmup "$FLOOR_WARMUP" --json "$OUT/floor.json" \
        "$@" "floor: unshare+chroot=$UNSHARE"; then
        load > "$OUT/floor.load"
    else
        echo "interleaved runs failed for floor" >&2
        FAILED="$FAILED floor"; rm -f "$OUT/floor.json"
    fi
    [ -n "$WARMER" ] && kill -CONT "$WARMER"
fi

# Scenario 2: create, start, delete -f.
if echo "$SCENARIOS" | grep -qw csd; then
    per_runtime csd '$c create -b $b $id && $c start $id && $c delete -f $id' "$UNSHARE"
fi

# Scenario 3: exec /bin/true into a running container (one per runtime).
if echo "$SCENARIOS" | grep -qw exec; then
    set --
    pid=""
    for r in $RUNTIMES; do
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        mkbundles "$n-exec" 1 "$W/template-sleep.json"
        $c run -d -b "$W/b/$n-exec-1" "rcb-$n-exec" </dev/null >/dev/null 2>&1 ||
            { echo "$n: run -d failed" >&2; FAILED="$FAILED exec"; continue; }
        pid=$($c state "rcb-$n-exec" | jq .pid)
        set -- "$@" -n "$n" "$c exec rcb-$n-exec /bin/true"
    done
    [ -n "$pid" ] && set -- "$@" -n "floor: nsenter --all" "nsenter --target $pid --all /bin/true"
    hf exec $HF -N "$@" -n "floor: fork+exec" "/bin/true"
    for r in $RUNTIMES; do
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        $c delete -f "rcb-$n-exec" >/dev/null 2>&1 || true
    done
fi

# Scenario 4: 50 containers run to completion, 8 at a time.
if echo "$SCENARIOS" | grep -qw par50; then
    set --
    for r in $RUNTIMES; do
        n=$(rt_name "$r"); c=$(rt_cmd "$n" "$(rt_path "$r")")
        mkbundles "$n-par" 50
        set -- "$@" -n "$n" "read i < $W/n/$n-par; echo \$((i+1)) > $W/n/$n-par; seq 50 | xargs -P8 -I{} $c run -b $W/b/$n-par-{} rcb-$n-par-\$i-{}"
    done
    hf par50 hyperfine --style basic --warmup 1 --runs "$PAR_RUNS" "$@" \
        -n "floor: unshare+chroot" "seq 50 | xargs -P8 -I{} $UNSHARE"
fi

# Scenario 5: peak RSS of the runtime during `run` (GNU time %M, KiB).
if echo "$SCENARIOS" | grep -qw rss; then
    say "rss (load average $(load))"
    : > "$OUT/rss.txt"
    for r in $RUNTIMES "floor=unshare"; do
        n=$(rt_name "$r")
        if [ "$n" = floor ]; then c=""; else
            c=$(rt_cmd "$n" "$(rt_path "$r")"); mkbundles "$n-rss" "$RSS_RUNS"; fi
        i=1
        while [ $i -le "$RSS_RUNS" ]; do
            if [ -z "$c" ]; then
                /usr/bin/time -f %M -o "$W/rss" $UNSHARE || true
            else
                /usr/bin/time -f %M -o "$W/rss" $c run -b "$W/b/$n-rss-$i" "rcb-$n-rss-$i" || true
            fi
            echo "$n $(tail -n 1 "$W/rss")" >> "$OUT/rss.txt"
            i=$((i + 1))
        done
    done
fi

# ---- the table --------------------------------------------------------------
cat <<EOF

rcrun benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')
machine: $(nproc) CPUs ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)), $(free -m | awk '/^Mem:/ {print $2}') MiB, kernel $(uname -r)
runtimes: $(for r in $RUNTIMES; do n=$(rt_name "$r"); p=$(rt_path "$r"); printf '%s (%s) ' "$n" "$($p --version 2>/dev/null | head -n 1 | sed 's/^[^0-9]*//')"; done)
given: $(for r in $RUNTIMES; do n=$(rt_name "$r"); printf '[%s: %s] ' "$n" "$(rt_cmd "$n" "$(rt_path "$r")" | sed "s|$W|\$W|g; s|^[^ ]*/||")"; done)
state: --root on a tmpfs (each runtime its own directory)
config: namespaces $(jq -r '[.linux.namespaces[].type] | join(",")' "$W/template.json"); root read-only=$(jq .root.readonly "$W/template.json"); $(jq '.mounts | length' "$W/template.json") mounts; resources $(jq -c '.linux.resources // {}' "$W/template.json"); cgroupsPath /rcrunbench/<id>; args /bin/true
${HYBRID:+$HYBRID
}cgroup migration lock: $(if [ -n "$WARMER" ]; then echo "kept hot by a helper (WARM=1): no runtime waits for an RCU grace period when it writes cgroup.procs; paused for the floor scenario (no cgroup.procs writer in it)"; else echo "not kept hot (WARM=0): a run may wait for an RCU grace period in its first cgroup.procs write"; fi)
runs: $RUNS (+$WARMUP warm-up) for run/csd/exec, $PAR_RUNS for par50, $RSS_RUNS for rss${PREP:+; before each timed run: $PREP}

| scenario | runtime | mean ms | ± stddev | min ms | ratio to fastest runtime | load avg |
|---|---|---|---|---|---|---|
EOF
for s in run csd exec par50; do
    [ -f "$OUT/$s.json" ] || continue
    jq -r --arg s "$s" --arg load "$(cat "$OUT/$s.load")" '
        ([.results[] | select(.command | startswith("floor") | not) | .mean] | min) as $f
        | .results[] | "| \($s) | \(.command) | \(.mean*1000*100|round/100) | \(.stddev*1000*100|round/100) | \(.min*1000*100|round/100) | \(.mean/$f*100|round/100) | \($load) |"' \
        "$OUT/$s.json"
done
if [ -f "$OUT/floor.json" ]; then
    echo
    echo "floor scenario: \`run\` and the unshare floor interleaved in random order, $FLOOR_ROUNDS rounds (+$FLOOR_WARMUP warm-up), warmer paused, load avg $(cat "$OUT/floor.load")"
    echo
    echo "| runtime | median ms | p90 ms | median of per-round ratios to the floor |"
    echo "|---|---|---|---|"
    jq -r '.results[] | "| \(.command) | \(.median_ms*100|round/100) | \(.p90_ms*100|round/100) | \(.median_ratio_to_reference*100|round/100) |"' "$OUT/floor.json"
fi
if [ -s "$OUT/rss.txt" ]; then
    echo
    echo "| peak RSS (GNU time %M) | max KiB | median KiB | ratio (max) to smallest runtime |"
    echo "|---|---|---|---|"
    awk '{ v[$1] = v[$1] " " $2; if (!($1 in o)) { o[$1] = ++k; nm[k] = $1 } }
         END { for (j = 1; j <= k; j++) { n = split(v[nm[j]], a, " "); asort_n(a, n)
                   mx[j] = a[n]; md[j] = a[int((n + 1) / 2)]
                   if (nm[j] != "floor" && (best == "" || mx[j] < best)) best = mx[j] }
               for (j = 1; j <= k; j++) printf "| %s | %d | %d | %.2f |\n", nm[j], mx[j], md[j], mx[j] / best }
         function asort_n(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }' \
        "$OUT/rss.txt"
fi

# ---- the issue's targets ---------------------------------------------------
mean() { [ -f "$OUT/$1.json" ] && jq -r --arg n "$2" '.results[] | select(.command == $n) | .mean' "$OUT/$1.json"; }
check() {   # check VARIANT SCENARIO OTHER LIMIT: VARIANT's mean <= LIMIT * OTHER's
    a=$(mean "$2" "$1" || true); b=$(mean "$2" "$3" || true)
    [ -n "$a" ] && [ -n "$b" ] || return 0
    awk -v a="$a" -v b="$b" -v l="$4" -v s="$2" -v o="$3" -v v="$1" 'BEGIN {
        printf "%-8s %s/%s = %.2f (target <= %s): %s\n", s, v, o, a / b, l, (a <= l * b) ? "met" : "NOT met" }'
}
echo
echo "targets:"
for v in rcrun rcrun-ro; do
    echo " $RUNTIMES " | grep -q " $v " || continue
    for s in run csd exec; do check $v $s crun 0.8; check $v $s runc 0.5; done
    if [ -f "$OUT/floor.json" ]; then
        jq -r --arg v "$v" '.results[] | select(.command == $v) | .median_ratio_to_reference' "$OUT/floor.json" |
            awk -v v="$v" '{ printf "%-8s %s/floor = %.2f (median of per-round ratios, target <= 1.5): %s\n", "floor", v, $1, ($1 <= 1.5) ? "met" : "NOT met" }'
    else
        check $v run "floor: unshare+chroot" 1.5
    fi
    check $v par50 crun 0.8
    if [ -s "$OUT/rss.txt" ]; then
        awk -v v="$v" '{ if ($2 > m[$1]) m[$1] = $2 } END { if ((v in m) && ("crun" in m))
            printf "%-8s %s/crun = %.2f (target <= 1): %s\n", "rss", v, m[v] / m["crun"], (m[v] <= m["crun"]) ? "met" : "NOT met" }' "$OUT/rss.txt"
    fi
done
[ -z "$FAILED" ] || { echo "failed scenarios:$FAILED" >&2; exit 1; }
