# Shared by tests/engines/*.bats: real container engines (podman,
# containerd, dockerd, Docker Swarm) driving rcrun in place of runc.
#
# Each .bats file calls `engines_init` in setup_file: it makes a private
# temp dir (E), builds the busybox image tarball from
# rootfs/build-busybox.sh, and records what exists on the host (cgroups,
# links) so that `engines_cleanup` (teardown_file) removes exactly what the
# engines and rcrun created: daemons and container processes (by pid),
# swarm membership, mounts under E, cgroups, docker_gwbridge/cni-podman0
# links, state directories, E itself. Nothing is skipped: a missing
# program is a failure.
#
# Environment: RCRUN (the binary under test, required: scripts/test-engines.sh
# builds the release binary and sets it). The engines are Debian 12's: podman 4.3, conmon 2.1,
# containerd 1.6 (containerd-shim-runc-v2), docker.io 20.10.

type bats_require_minimum_version >/dev/null 2>&1 && bats_require_minimum_version 1.5.0

ENGINES_REPO=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
RCRUN=${RCRUN:?set RCRUN to the rcrun binary (scripts/test-engines.sh does)}
# /usr/local/bin/docker may be a newer client that shadows Debian's.
DOCKER_BIN=/usr/bin/docker
IMAGE=busybox-local
# Directories the engines make outside E (removed when empty and new).
ENGINES_RUNDIRS="/run/containerd/runc /run/containerd/rcrun /run/containerd/s /run/containerd/fifo /run/containerd
/run/docker/plugins /run/docker /run/libpod /run/containers/storage /run/containers/networks
/run/containers"
# podman's blob-info cache (written by import whatever storage.conf says):
# removed with its content when it is new.
ENGINES_CACHEDIRS="/var/lib/containers/cache /etc/docker"

# Fails loudly when a program the tests need is missing.
engines_require() {
    local p
    for p in "$@"; do
        if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "$p" ]; then
            echo "MISSING: $p (install it: sh scripts/test-engines.sh does)" >&2
            return 1
        fi
    done
}

# engines_init NAME: temp dir, image tarball, host snapshot.
engines_init() {
    engines_require "$RCRUN" bats ip mountpoint
    [ "$(basename "$RCRUN")" = rcrun ] || {
        echo "RCRUN must be named rcrun (podman keys runtime_supports_json on the name): $RCRUN" >&2
        return 1
    }
    # Short: dockerd's and containerd's sockets live under it (108-byte limit).
    E=$(mktemp -d "/tmp/rce-$1.XXXXXX")
    export E
    echo "$E" > "$BATS_FILE_TMPDIR/engines_dir"
    # What exists before the engines run: only newer cgroups and links are removed.
    engines_cgroup_dirs > "$E/cgroups.before"
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' > "$E/links.before"
    for d in $ENGINES_RUNDIRS $ENGINES_CACHEDIRS /var/lib/containers; do
        [ -e "$d" ] && echo "$d"
    done > "$E/rundirs.before"
    mkdir -p "$E/bundle"
    RCRUN= sh "$ENGINES_REPO/rootfs/build-busybox.sh" "$E/bundle" >/dev/null
    tar -C "$E/bundle/rootfs" -cf "$E/rootfs.tar" .
    rm -rf "$E/bundle"
}

# The engines' cgroup directories (below every mounted hierarchy).
engines_cgroup_dirs() {
    local m
    for m in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
        [ -e "$m/cgroup.procs" ] || continue
        find "$m" -mindepth 1 -type d 2>/dev/null
    done | sort -u
}

# Re-reads E in a test (setup_file exports it, but be explicit).
engines_dir() {
    E=${E:-$(cat "$BATS_FILE_TMPDIR/engines_dir")}
    export E
}

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
    local t=$1 i=0
    shift
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -ge $((t * 5)) ]; then
            echo "timed out after ${t}s waiting for: $*" >&2
            "$@" >&2 || true
            return 1
        fi
        sleep 0.2
    done
}

# Processes whose command line mentions E (daemons, shims, conmon), by pid.
engines_pids_of_dir() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = $$ ] && continue
        if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -qF "$E"; then
            echo "${p#/proc/}"
        fi
    done
}

# kill_pidfile FILE [SECONDS]: SIGTERM the daemon, SIGKILL after SECONDS.
kill_pidfile() {
    local f=$1 t=${2:-15} pid i=0
    [ -s "$f" ] || return 0
    pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -ge $((t * 5)) ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.2
    done
}

# Everything the engines and rcrun created, even after a failure.
engines_cleanup() {
    engines_dir
    [ -n "$E" ] && [ -d "$E" ] || return 0
    local m p d l i
    # Daemons first, politely (dockerd stops its containers and containerd).
    if [ -S "$E/docker.sock" ]; then
        "$DOCKER_BIN" -H "unix://$E/docker.sock" swarm leave --force >/dev/null 2>&1 || true
        "$DOCKER_BIN" -H "unix://$E/docker.sock" ps -aq 2>/dev/null |
            xargs -r "$DOCKER_BIN" -H "unix://$E/docker.sock" rm -f >/dev/null 2>&1 || true
    fi
    if [ -f "$E/containers.conf" ]; then
        podman_ rm -af -t 0 >/dev/null 2>&1 || true
    fi
    for p in "$E"/*.pid; do
        [ -f "$p" ] && kill_pidfile "$p" 20
    done
    # Container processes left in the engines' new cgroups, then stragglers
    # (shims, conmon) whose command line names E: SIGKILL by pid.
    for i in 1 2 3; do
        engines_new_cgroups | while read -r d; do
            [ -f "$d/cgroup.procs" ] && cat "$d/cgroup.procs" 2>/dev/null
        done | sort -u | while read -r p; do
            [ "$p" != $$ ] && kill -KILL "$p" 2>/dev/null
        done
        for p in $(engines_pids_of_dir); do
            kill -KILL "$p" 2>/dev/null
        done
        sleep 0.3
    done
    # Mounts under E (overlays, shm, netns), deepest first.
    for i in 1 2 3; do
        awk -v e="$E" '$5 == e || index($5, e "/") == 1 {print $5}' /proc/self/mountinfo |
            sort -r | while read -r m; do
                umount -l "$m" 2>/dev/null || true
            done
    done
    # Thaw, then remove the engines' cgroups, deepest first.
    engines_new_cgroups | sort -r | while read -r d; do
        [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state" 2>/dev/null
        [ -f "$d/cgroup.freeze" ] && echo 0 > "$d/cgroup.freeze" 2>/dev/null
        rmdir "$d" 2>/dev/null || true
    done
    # Links the engines made (docker_gwbridge, cni-podman0, veths).
    ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | while read -r l; do
        grep -qx "$l" "$E/links.before" 2>/dev/null && continue
        case "$l" in
            docker_gwbridge | cni-podman0 | veth* | docker0) ip link del "$l" 2>/dev/null || true ;;
        esac
    done
    # State roots outside E: the runc shim's default root for containerd's namespace.
    # (and rcrun's shim's).
    [ -f "$E/ctr.ns" ] && rm -rf "/run/containerd/runc/$(cat "$E/ctr.ns")" \
        "/run/containerd/rcrun/$(cat "$E/ctr.ns")"
    for d in $ENGINES_CACHEDIRS; do
        grep -qx "$d" "$E/rundirs.before" 2>/dev/null || rm -rf --one-file-system "$d"
    done
    for d in $ENGINES_RUNDIRS /var/lib/containers; do
        grep -qx "$d" "$E/rundirs.before" 2>/dev/null || rmdir "$d" 2>/dev/null || true
    done
    rm -rf "$E" 2>/dev/null || {
        echo "could not remove $E" >&2
        return 1
    }
}

# New cgroup directories below the engines' parents (docker, libpod_parent,
# the containerd namespace), created since engines_init.
engines_new_cgroups() {
    [ -f "$E/cgroups.before" ] || return 0
    engines_cgroup_dirs | comm -13 "$E/cgroups.before" - | grep -E \
        '/(docker|libpod_parent|machine\.slice|rcrun-eng-[a-z0-9]+)(/|$)' || true
}

# After cleanup: fail if anything of this run is left on the host.
engines_check_clean() {
    local bad=0 d
    engines_dir
    if [ -d "$E" ]; then echo "left: $E" >&2; bad=1; fi
    if grep -qF "$E" /proc/self/mountinfo; then
        echo "left mounts:" >&2
        grep -F "$E" /proc/self/mountinfo >&2
        bad=1
    fi
    return $bad
}

# ---- podman -------------------------------------------------------------

podman_() {
    CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf \
        podman --runtime "$RCRUN" "$@"
}

podman_init() {
    engines_require podman conmon
    mkdir -p "$E/podman/root" "$E/podman/run" "$E/podman/tmp" "$E/podman/cni"
    cat > "$E/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$E/podman/root"
runroot = "$E/podman/run"
EOF
    # The machine's NOFILE hard limit is 20000 and there is no
    # CAP_SYS_RESOURCE: podman's default (1048576) cannot be set.
    cat > "$E/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$E/podman/events.log"
tmp_dir = "$E/podman/tmp"
runtime = "rcrun"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "rcrun"]

[engine.runtimes]
rcrun = ["$RCRUN"]

[network]
network_config_dir = "$E/podman/cni"
EOF
    podman_ import -q "$E/rootfs.tar" "$IMAGE" >/dev/null
}

# ---- containerd ---------------------------------------------------------

. "$ENGINES_REPO/scripts/lib/containerd.sh"

# After each test: every task killed and deleted, every container removed.
ctr_teardown() {
    local t
    for t in $(ctr_ task ls -q 2>/dev/null); do
        ctr_ task kill -s KILL "$t" >/dev/null 2>&1 || true
        ctr_ task delete -f "$t" >/dev/null 2>&1 || true
    done
    for t in $(ctr_ container ls -q 2>/dev/null); do
        ctr_ container delete "$t" >/dev/null 2>&1 || true
    done
}

ctr_() {
    ctr -a "$E/containerd.sock" -n "$CTR_NS" "$@"
}

# ctr_run ARGS...: `ctr run` on rcrun through the runc shim.
ctr_run() {
    ctr_ run --runtime io.containerd.runc.v2 --runc-binary "$RCRUN" \
        --fifo-dir "$E/fifo" "$@"
}

containerd_start() {
    engines_require containerd ctr containerd-shim-runc-v2 sha256sum
    CTR_NS=rcrun-eng-$(basename "$E" | tr -cd 'a-z0-9' | tail -c 8)
    export CTR_NS
    echo "$CTR_NS" > "$E/ctr.ns"
    mkdir -p "$E/containerd/root" "$E/containerd/state" "$E/fifo"
    containerd_toml "$E"
    # containerd finds a runtime's shim (io.containerd.rcrun.v2:
    # containerd-shim-rcrun-v2) on its PATH: RCRUN_SHIM's directory first.
    PATH="$(dirname "${RCRUN_SHIM:-/nonexistent/x}"):$PATH" \
        containerd --config "$E/containerd.toml" > "$E/containerd.log" 2>&1 &
    echo $! > "$E/containerd.pid"
    wait_for 30 ctr -a "$E/containerd.sock" version || {
        cat "$E/containerd.log" >&2
        return 1
    }
    # No registry: an OCI image archive of the busybox rootfs.
    oci_archive "$E/rootfs.tar" "$E/image.tar"
    ctr_ image import --base-name "docker.io/library/$IMAGE" "$E/image.tar" >/dev/null
    CTR_IMAGE=docker.io/library/$IMAGE:latest
    export CTR_IMAGE
}

# oci_archive LAYER.tar OUT.tar: a one-layer OCI image layout, tagged latest.
oci_archive() {
    local d=$E/oci b=$E/oci/blobs/sha256 layer lsize cfg csize man msize arch
    mkdir -p "$b"
    arch=$(dpkg --print-architecture)
    layer=$(sha256sum "$1" | cut -d' ' -f1)
    lsize=$(stat -c %s "$1")
    cp "$1" "$b/$layer"
    printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$arch" "$layer" > "$d/config"
    cfg=$(sha256sum "$d/config" | cut -d' ' -f1)
    csize=$(stat -c %s "$d/config")
    mv "$d/config" "$b/$cfg"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
        "$cfg" "$csize" "$layer" "$lsize" > "$d/manifest"
    man=$(sha256sum "$d/manifest" | cut -d' ' -f1)
    msize=$(stat -c %s "$d/manifest")
    mv "$d/manifest" "$b/$man"
    printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
        "$man" "$msize" "$arch" > "$d/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' > "$d/oci-layout"
    tar -C "$d" -cf "$2" oci-layout index.json blobs
    rm -rf "$d"
}

# ---- dockerd ------------------------------------------------------------

docker_() {
    "$DOCKER_BIN" -H "unix://$E/docker.sock" "$@"
}

# dockerd_start [EXTRA DOCKERD FLAGS]: rcrun added as a runtime.
dockerd_start() {
    engines_require dockerd "$DOCKER_BIN" containerd containerd-shim-runc-v2
    mkdir -p "$E/docker/data" "$E/docker/exec"
    # The trust key would go to /etc/docker/key.json otherwise.
    echo "{\"deprecated-key-path\": \"$E/docker/key.json\"}" > "$E/daemon.json"
    dockerd --config-file "$E/daemon.json" \
        --data-root "$E/docker/data" --exec-root "$E/docker/exec" \
        --pidfile "$E/dockerd.pid" -H "unix://$E/docker.sock" \
        --iptables=false --ip6tables=false --ip-masq=false --bridge=none \
        --add-runtime "rcrun=$RCRUN" "$@" > "$E/dockerd.log" 2>&1 &
    echo $! > "$E/dockerd.launch.pid"
    wait_for 60 docker_ version || {
        tail -50 "$E/dockerd.log" >&2
        return 1
    }
    docker_ import "$E/rootfs.tar" "$IMAGE" >/dev/null
}
