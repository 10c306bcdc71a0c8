#!/usr/bin/env bats
# dockerd 20.10 (Debian's docker.io, its own containerd and runc shim)
# with `--add-runtime rcrun=$RCRUN --default-runtime rcrun`, started here
# with its data and exec roots in a temp dir, no bridge and no iptables.
# See runtime-spec/engines.md for what dockerd's shim passes to the runtime.

load helpers

setup_file() {
    engines_init docker
    dockerd_start --default-runtime rcrun || { engines_cleanup; return 1; }
}

teardown_file() {
    engines_cleanup
    engines_check_clean
}

setup() {
    engines_dir
}

teardown() {
    docker_ ps -aq | xargs -r "$DOCKER_BIN" -H "unix://$E/docker.sock" rm -f >/dev/null 2>&1 || true
}

@test "docker info: rcrun is registered and the default runtime" {
    run docker_ info --format '{{.DefaultRuntime}}'
    [ "$output" = rcrun ]
    run docker_ info --format '{{json .Runtimes}}'
    [[ "$output" == *"\"rcrun\":{\"path\":\"$RCRUN\"}"* ]]
}

@test "docker info reads rcrun's version (runc's --version format)" {
    run docker_ info --format '{{.RuncCommit.ID}}'
    [ "$status" -eq 0 ]
    [ -n "$output" ]
    [ "$output" != N/A ]
    ! grep -q "failed to parse $RCRUN version" "$E/dockerd.log"
}

@test "docker run --runtime rcrun --rm echo hi" {
    run docker_ run --runtime rcrun --rm "$IMAGE" echo hi
    [ "$status" -eq 0 ]
    [ "$output" = hi ]
}

@test "docker run: exit status, stderr, pid 1, hostname" {
    run docker_ run --runtime rcrun --rm --hostname box "$IMAGE" sh -c 'echo $$; hostname; exit 6'
    [ "$status" -eq 6 ]
    [ "${lines[0]}" = 1 ]
    [ "${lines[1]}" = box ]
    run bash -c "$DOCKER_BIN -H unix://$E/docker.sock run --runtime rcrun --rm $IMAGE sh -c 'echo out; echo err >&2' 2>&1 >/dev/null"
    [ "$output" = err ]
}

@test "docker run without --runtime uses rcrun (--default-runtime rcrun)" {
    id=$(docker_ run -d "$IMAGE" sleep 1000)
    [ "$(docker_ inspect -f '{{.HostConfig.Runtime}}' "$id")" = rcrun ]
    root=$(dirname "$(ls -d "$E"/docker/exec/runtime-*/moby/"$id")")
    run "$RCRUN" --root "$root" state "$id"
    [ "$status" -eq 0 ]
    [[ "$output" == *'"status": "running"'* ]]
}

@test "docker exec: output, exit status, env, user, workdir" {
    docker_ run -d --name ex "$IMAGE" sleep 1000
    run docker_ exec ex sh -c 'echo from-exec; cat /proc/1/cmdline'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = from-exec ]
    [[ "${lines[1]}" == sleep* ]]
    run docker_ exec ex sh -c 'exit 4'
    [ "$status" -eq 4 ]
    run docker_ exec -e A=b -u 1000:1000 -w /tmp ex sh -c 'echo $A; id -u; pwd'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = b ]
    [ "${lines[1]}" = 1000 ]
    [ "${lines[2]}" = /tmp ]
    run bash -c "echo via-stdin | $DOCKER_BIN -H unix://$E/docker.sock exec -i ex cat"
    [ "$output" = via-stdin ]
}

@test "docker run -t and exec -t: terminals through the shim's console socket" {
    run script -qec "$DOCKER_BIN -H unix://$E/docker.sock run --rm -t $IMAGE tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == /dev/pts/0* ]]
    docker_ run -d --name tt "$IMAGE" sleep 1000
    run script -qec "$DOCKER_BIN -H unix://$E/docker.sock exec -t tt tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == /dev/pts/* ]]
}

@test "docker stop: SIGTERM to a handler exits 0 at once" {
    docker_ run -d --name term "$IMAGE" sh -c 'trap "echo got-term; exit 0" TERM; sleep 1000 & wait'
    sleep 0.5
    SECONDS=0
    run docker_ stop -t 20 term
    [ "$status" -eq 0 ]
    [ "$SECONDS" -lt 10 ]
    [ "$(docker_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' term)" = "exited 0" ]
    [ "$(docker_ logs term)" = got-term ]
}

@test "docker stop: SIGKILL after the timeout when SIGTERM is ignored" {
    docker_ run -d --name deaf "$IMAGE" sh -c 'trap "" TERM; while :; do sleep 1; done'
    SECONDS=0
    run docker_ stop -t 2 deaf
    [ "$status" -eq 0 ]
    [ "$SECONDS" -ge 2 ]
    [ "$(docker_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' deaf)" = "exited 137" ]
}

@test "docker kill -s: a signal reaches the container" {
    docker_ run -d --name sig "$IMAGE" sh -c 'trap "echo got-usr1" USR1; while :; do sleep 0.1; done'
    sleep 0.5
    docker_ kill -s USR1 sig
    wait_for 10 sh -c "$DOCKER_BIN -H unix://$E/docker.sock logs sig | grep -q got-usr1"
    docker_ kill sig
    wait_for 10 sh -c "[ \"\$($DOCKER_BIN -H unix://$E/docker.sock inspect -f '{{.State.ExitCode}}' sig)\" = 137 ]"
}

@test "docker run --restart on-failure: dockerd restarts it through rcrun" {
    docker_ run -d --name flaky --restart on-failure:3 "$IMAGE" sh -c 'echo run; exit 1'
    wait_for 30 sh -c "[ \"\$($DOCKER_BIN -H unix://$E/docker.sock inspect -f '{{.RestartCount}} {{.State.Status}}' flaky)\" = '3 exited' ]"
    [ "$(docker_ inspect -f '{{.State.ExitCode}}' flaky)" = 1 ]
    [ "$(docker_ logs flaky | grep -c run)" -eq 4 ]
}

@test "docker run --restart always: a killed container comes back with a new pid" {
    docker_ run -d --name phoenix --restart always "$IMAGE" sleep 1000
    p1=$(docker_ inspect -f '{{.State.Pid}}' phoenix)
    kill -KILL "$p1"
    wait_for 30 sh -c "[ \"\$($DOCKER_BIN -H unix://$E/docker.sock inspect -f '{{.RestartCount}} {{.State.Status}}' phoenix)\" = '1 running' ]"
    p2=$(docker_ inspect -f '{{.State.Pid}}' phoenix)
    [ "$p2" != "$p1" ]
    [ "$p2" -gt 0 ]
}

@test "docker restart: stop and start again through rcrun" {
    docker_ run -d --name rs "$IMAGE" sleep 1000
    p1=$(docker_ inspect -f '{{.State.Pid}}' rs)
    run docker_ restart -t 1 rs
    [ "$status" -eq 0 ]
    p2=$(docker_ inspect -f '{{.State.Pid}}' rs)
    [ "$p1" != "$p2" ]
    [ "$(docker_ inspect -f '{{.State.Running}}' rs)" = true ]
}

@test "docker run --memory --pids-limit --cpu-shares: limits read from inside" {
    run docker_ run --rm --memory 64m --pids-limit 40 --cpu-shares 512 "$IMAGE" sh -c '
        if [ -e /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
            cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares
        else
            cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.weight
        fi'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = 67108864 ]
    [ "${lines[1]}" = 40 ]
    [ "${lines[2]}" = 512 ] || [ "${lines[2]}" = 20 ]
}

@test "docker update (update --resources -): new limits, zero values left as they are" {
    docker_ run -d --name upd --memory 64m --cpu-shares 512 --pids-limit 40 "$IMAGE" sleep 1000
    run docker_ update --memory 96m --memory-swap 200m upd
    [ "$status" -eq 0 ]
    run docker_ exec upd sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max 2>/dev/null ||
        cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/pids.max'
    [ "${lines[0]}" = 100663296 ]
    # dockerd sends cpu.shares 0: the old value stays.
    [ "${lines[1]}" = 512 ] || [ "${lines[1]}" = 20 ]
    [ "${lines[2]}" = 40 ]
    run docker_ update --pids-limit 30 upd
    [ "$status" -eq 0 ]
    run docker_ exec upd sh -c 'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max'
    [ "$output" = 30 ]
}

@test "docker top (ps --format json), pause/unpause" {
    docker_ run -d --name top "$IMAGE" sh -c 'sleep 1000 & wait'
    sleep 0.3
    run docker_ top top
    [ "$status" -eq 0 ]
    [[ "$output" == *"sleep 1000"* ]]
    [ "$(echo "$output" | grep -c 'sleep 1000\|sh -c')" -eq 2 ]
    run docker_ pause top
    [ "$status" -eq 0 ]
    [ "$(docker_ inspect -f '{{.State.Status}}' top)" = paused ]
    run docker_ exec top true
    [ "$status" -ne 0 ]
    run docker_ unpause top
    [ "$status" -eq 0 ]
    [ "$(docker_ inspect -f '{{.State.Status}}' top)" = running ]
    run docker_ exec top echo back
    [ "$output" = back ]
}

@test "docker run --read-only, --user, --cap-drop, --init" {
    run docker_ run --rm --read-only "$IMAGE" sh -c 'touch /x 2>/dev/null && echo rw || echo ro'
    [ "$output" = ro ]
    run docker_ run --rm --user 1000:1000 "$IMAGE" id -u
    [ "$output" = 1000 ]
    run docker_ run --rm --cap-drop ALL "$IMAGE" grep CapEff /proc/self/status
    [[ "$output" == *0000000000000000 ]]
    run docker_ run --rm --init "$IMAGE" sh -c 'cat /proc/1/cmdline | tr "\0" " "'
    [ "$status" -eq 0 ]
    [[ "$output" == /sbin/docker-init* ]]
}

@test "docker rm -f of a running container leaves no rcrun state or cgroup" {
    id=$(docker_ run -d "$IMAGE" sleep 1000)
    pid=$(docker_ inspect -f '{{.State.Pid}}' "$id")
    run docker_ rm -f "$id"
    [ "$status" -eq 0 ]
    ! kill -0 "$pid" 2>/dev/null
    ! ls -d "$E"/docker/exec/runtime-*/moby/"$id" 2>/dev/null
    [ ! -e "/sys/fs/cgroup/pids/docker/$id" ]
}

@test "docker run: a missing program exits 127, a non-executable one 126" {
    run -127 docker_ run --rm "$IMAGE" /nonexistent
    run -127 docker_ run --rm "$IMAGE" no-such-program
    run docker_ run --rm "$IMAGE" /etc/passwd
    [ "$status" -eq 126 ]
}

@test "docker run --privileged, --network host, --pid container:, --tmpfs, -v" {
    run docker_ run --rm --privileged "$IMAGE" sh -c 'ls /dev | wc -l; mount | grep " /sys "'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" -gt 20 ]
    [[ "${lines[1]}" == *"(rw,"* ]]
    run docker_ run --rm --network host "$IMAGE" cat /proc/net/dev
    [[ "$output" == *eth0* || "$output" == *ens* || "$output" == *enp* ]]
    docker_ run -d --name donor "$IMAGE" sleep 1000
    run docker_ run --rm --pid container:donor "$IMAGE" sh -c 'cat /proc/1/cmdline'
    [[ "$output" == sleep* ]]
    run docker_ run --rm --tmpfs /scratch:size=1m "$IMAGE" sh -c 'mount | grep " /scratch "'
    [[ "$output" == *"tmpfs on /scratch type tmpfs"* ]]
    mkdir -p "$E/vol" && echo on-host > "$E/vol/f"
    run docker_ run --rm -v "$E/vol:/vol" "$IMAGE" sh -c 'cat /vol/f; echo from-container > /vol/g'
    [ "$output" = on-host ]
    [ "$(cat "$E/vol/g")" = from-container ]
}

@test "docker run --memory: an OOM kill is reported (OOMKilled, exit 137)" {
    run docker_ run --name oom --memory 8m --memory-swap 8m "$IMAGE" sh -c 'x=a; while :; do x=$x$x; done'
    [ "$status" -eq 137 ]
    [ "$(docker_ inspect -f '{{.State.OOMKilled}}' oom)" = true ]
}
