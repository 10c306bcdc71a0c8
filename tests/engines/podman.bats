#!/usr/bin/env bats
# podman (through conmon) with rcrun as its OCI runtime:
# podman --runtime $RCRUN ... against storage, run dirs and a
# containers.conf in a temp dir. See runtime-spec/engines.md for what
# podman passes to the runtime.

load helpers

setup_file() {
    engines_init podman
    podman_init || { engines_cleanup; return 1; }
}

teardown_file() {
    engines_cleanup
    engines_check_clean
}

setup() {
    engines_dir
}

teardown() {
    podman_ rm -af -t 0 >/dev/null 2>&1 || true
}

# The container's cgroup files as seen from inside (v1 or v2 layout).
inside_limits='
if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
    cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max
else
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max
fi'

@test "podman run --rm echo hi" {
    run podman_ run --rm "$IMAGE" echo hi
    [ "$status" -eq 0 ]
    [ "$output" = hi ]
}

@test "podman run: the container's exit status and stderr come back" {
    run podman_ run --rm "$IMAGE" sh -c 'echo oops >&2; exit 7'
    [ "$status" -eq 7 ]
    [ "$output" = oops ]
}

@test "podman run: isolated pid namespace, hostname, read-only sysfs" {
    run podman_ run --rm --hostname box "$IMAGE" sh -c 'echo $$; hostname; touch /sys/x 2>&1 || echo ro'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 1 ]
    [ "${lines[1]}" = box ]
    [ "${lines[-1]}" = ro ]
}

@test "podman run -d, ps, exec, exec exit status, inspect pid" {
    run podman_ run -d --name web "$IMAGE" sleep 1000
    [ "$status" -eq 0 ]
    run podman_ ps --format '{{.Names}} {{.Status}}'
    [ "$status" -eq 0 ]
    [[ "$output" == *"web Up"* ]]
    run podman_ exec web sh -c 'echo from-exec; cat /proc/1/cmdline | tr "\0" " "'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = from-exec ]
    [ "${lines[1]}" = "sleep 1000 " ]
    run podman_ exec web sh -c 'exit 3'
    [ "$status" -eq 3 ]
    run podman_ exec -e FOO=bar -w /tmp web sh -c 'echo $FOO; pwd'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = bar ]
    [ "${lines[1]}" = /tmp ]
    pid=$(podman_ inspect -f '{{.State.Pid}}' web)
    [ "$pid" -gt 1 ]
    [ "$(tr '\0' ' ' < /proc/$pid/cmdline)" = "sleep 1000 " ]
}

@test "podman exec -i passes stdin" {
    podman_ run -d --name cat1 "$IMAGE" sleep 1000
    run bash -c "echo through-stdin | CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf podman --runtime $RCRUN exec -i cat1 cat"
    [ "$status" -eq 0 ]
    [ "$output" = through-stdin ]
}

@test "podman stop: SIGTERM stops a container that handles it" {
    podman_ run -d --name term "$IMAGE" sh -c 'trap "echo got-term; exit 0" TERM; sleep 1000 & wait'
    sleep 0.5
    SECONDS=0
    run podman_ stop -t 20 term
    [ "$status" -eq 0 ]
    [ "$SECONDS" -lt 10 ]
    [ "$(podman_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' term)" = "exited 0" ]
    run podman_ logs term
    [ "$output" = got-term ]
}

@test "podman stop: SIGKILL after the timeout when SIGTERM is ignored" {
    podman_ run -d --name deaf "$IMAGE" sh -c 'trap "" TERM; while :; do sleep 1; done'
    SECONDS=0
    run podman_ stop -t 2 deaf
    [ "$status" -eq 0 ]
    [ "$SECONDS" -ge 2 ]
    [ "$(podman_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' deaf)" = "exited 137" ]
}

@test "podman kill: a named signal reaches the container, default SIGKILL" {
    podman_ run -d --name sig "$IMAGE" sh -c 'trap "echo got-usr1" USR1; while :; do sleep 0.1; done'
    sleep 0.5
    run podman_ kill -s USR1 sig
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf podman logs sig | grep -q got-usr1"
    [ "$(podman_ inspect -f '{{.State.Status}}' sig)" = running ]
    run podman_ kill sig
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "[ \"\$(CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf podman inspect -f '{{.State.Status}} {{.State.ExitCode}}' sig)\" = 'exited 137' ]"
}

@test "podman pause/unpause freezes and thaws the container" {
    podman_ run -d --name tick "$IMAGE" sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; sleep 0.1; done'
    pid=$(podman_ inspect -f '{{.State.Pid}}' tick)
    wait_for 10 test -s "/proc/$pid/root/tmp/n"
    run podman_ pause tick
    [ "$status" -eq 0 ]
    [ "$(podman_ inspect -f '{{.State.Status}}' tick)" = paused ]
    a=$(cat "/proc/$pid/root/tmp/n")
    sleep 0.6
    b=$(cat "/proc/$pid/root/tmp/n")
    [ "$a" = "$b" ]
    run podman_ unpause tick
    [ "$status" -eq 0 ]
    [ "$(podman_ inspect -f '{{.State.Status}}' tick)" = running ]
    sleep 0.6
    c=$(cat "/proc/$pid/root/tmp/n")
    [ "$c" -gt "$b" ]
    run podman_ exec tick echo alive
    [ "$output" = alive ]
}

@test "podman logs: stdout and stderr of a detached container" {
    podman_ run -d --name chatty "$IMAGE" sh -c 'echo one; echo two >&2; echo three'
    run podman_ wait chatty
    [ "$output" = 0 ]
    run podman_ logs chatty
    [ "$status" -eq 0 ]
    [[ "$output" == *one* ]]
    [[ "$output" == *two* ]]
    [[ "$output" == *three* ]]
}

@test "podman run --memory --pids-limit: limits read from inside the container" {
    run podman_ run --rm --memory 64m --pids-limit 50 "$IMAGE" sh -c "$inside_limits"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 67108864 ]
    [ "${lines[1]}" = 50 ]
}

@test "podman run --pids-limit is enforced: fork fails past the limit" {
    run podman_ run --rm --pids-limit 10 "$IMAGE" sh -c 'for i in $(seq 1 20); do sleep 5 & done; wait; echo done'
    [ "$status" -ne 0 ]
    [[ "$output" == *"can't fork"* ]]
}

@test "podman update changes the limits of a running container" {
    podman_ run -d --name upd --memory 64m --cpu-shares 1024 "$IMAGE" sleep 1000
    run podman_ update --memory 96m --cpu-shares 512 upd
    [ "$status" -eq 0 ]
    run podman_ exec upd sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.weight'
    [ "${lines[0]}" = 100663296 ]
    [ "${lines[1]}" = 512 ] || [ "${lines[1]}" = 20 ]
}

@test "podman run -t: a terminal through conmon's console socket" {
    run script -qec "CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf podman --runtime $RCRUN run --rm -t $IMAGE sh -c 'tty; stty size'" /dev/null
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == /dev/pts/0* ]]
}

@test "podman exec -t: a terminal for an exec'd process" {
    podman_ run -d --name tt "$IMAGE" sleep 1000
    run script -qec "CONTAINERS_CONF=$E/containers.conf CONTAINERS_STORAGE_CONF=$E/storage.conf podman --runtime $RCRUN exec -t tt tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == /dev/pts/* ]]
}

@test "podman run --user, --cap-drop" {
    run podman_ run --rm --user 1000:1000 "$IMAGE" sh -c 'id -u; id -g'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 1000 ]
    [ "${lines[1]}" = 1000 ]
    run podman_ run --rm --cap-drop all "$IMAGE" sh -c 'grep CapEff /proc/self/status'
    [ "$status" -eq 0 ]
    [[ "$output" == *0000000000000000 ]]
}

@test "podman run --read-only: tmpfs /tmp, /run, /var/tmp with tmpcopyup" {
    run podman_ run --rm --read-only "$IMAGE" sh -c 'touch /x 2>/dev/null && echo rw || echo ro; touch /tmp/y && echo tmp-rw'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = ro ]
    [ "${lines[1]}" = tmp-rw ]
}

@test "podman restart and rm -f of a running container" {
    podman_ run -d --name rs "$IMAGE" sleep 1000
    p1=$(podman_ inspect -f '{{.State.Pid}}' rs)
    run podman_ restart -t 1 rs
    [ "$status" -eq 0 ]
    p2=$(podman_ inspect -f '{{.State.Pid}}' rs)
    [ "$p1" != "$p2" ]
    [ "$(podman_ inspect -f '{{.State.Status}}' rs)" = running ]
    run podman_ rm -f -t 0 rs
    [ "$status" -eq 0 ]
    ! kill -0 "$p2" 2>/dev/null
}

@test "podman run --tmpfs and --mount type=tmpfs (tmpcopyup)" {
    run podman_ run --rm --tmpfs /scratch:size=1m "$IMAGE" sh -c 'mount | grep " /scratch "'
    [ "$status" -eq 0 ]
    [[ "$output" == *"tmpfs on /scratch type tmpfs"*"size=1024k"* ]]
    # tmpcopyup: what the image has at the mount point is copied onto the tmpfs.
    run podman_ run --rm --mount type=tmpfs,dst=/etc,tmpfs-size=1m "$IMAGE" sh -c 'mount | grep -c " /etc "; grep -c ^root: /etc/passwd'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 1 ]
    [ "${lines[1]}" = 1 ]
}

@test "podman run/exec: a missing program exits 127, a non-executable one 126" {
    run -127 podman_ run --rm "$IMAGE" /nonexistent
    run podman_ run --rm "$IMAGE" /etc/passwd
    [ "$status" -eq 126 ]
    podman_ run -d --name errs "$IMAGE" sleep 1000
    run -127 podman_ exec errs /nonexistent
    run -127 podman_ exec errs no-such-program
    run podman_ exec errs /etc/passwd
    [ "$status" -eq 126 ]
}

@test "podman pod: containers join the infra container's namespaces by path" {
    run podman_ pod create --name pod1 --share pid,ipc,uts,net
    [ "$status" -eq 0 ]
    podman_ run -d --pod pod1 --name member1 "$IMAGE" sleep 1000
    run podman_ run --rm --pod pod1 "$IMAGE" sh -c 'hostname; ps -o comm | grep -c sleep; cat /proc/1/cmdline'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = pod1 ]
    [ "${lines[1]}" = 1 ]
    [[ "${lines[2]}" == /catatonit* ]]
    run podman_ pod rm -f -t 0 pod1
    [ "$status" -eq 0 ]
}

@test "podman run --uidmap: a user namespace" {
    run podman_ run --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 "$IMAGE" sh -c 'cat /proc/self/uid_map; id -u'
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" =~ ^\ *0\ +100000\ +65536$ ]]
    [ "${lines[1]}" = 0 ]
}
