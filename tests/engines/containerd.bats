#!/usr/bin/env bats
# containerd 1.6 with its runc shim (io.containerd.runc.v2) driving rcrun:
# `ctr run --runc-binary $RCRUN`, against a containerd started here with
# its root, state and sockets in a temp dir, in a namespace of its own.
# See runtime-spec/engines.md for what the shim passes to the runtime.

load helpers

setup_file() {
    engines_init containerd
    containerd_start || { engines_cleanup; return 1; }
}

teardown_file() {
    engines_cleanup
    engines_check_clean
}

setup() {
    engines_dir
    CTR_NS=$(cat "$E/ctr.ns")
    CTR_IMAGE=docker.io/library/$IMAGE:latest
}

teardown() {
    ctr_teardown
}

# The status column of `ctr task ls` for one task.
task_status() {
    ctr_ task ls | awk -v t="$1" '$1 == t {print $3}'
}

@test "ctr run --rm: echo hi through the runc shim and rcrun" {
    run ctr_run --rm "$CTR_IMAGE" t-hi echo hi
    [ "$status" -eq 0 ]
    [ "$output" = hi ]
}

@test "ctr run: the exit status comes back" {
    run ctr_run --rm "$CTR_IMAGE" t-exit sh -c 'echo out; exit 5'
    [ "$status" -eq 5 ]
    [ "$output" = out ]
}

@test "ctr run -d, task list, exec, exec exit status" {
    run ctr_run -d "$CTR_IMAGE" t-run sleep 1000
    [ "$status" -eq 0 ]
    [ "$(task_status t-run)" = RUNNING ]
    pid=$(ctr_ task ls | awk '$1 == "t-run" {print $2}')
    [ "$(tr '\0' ' ' < /proc/$pid/cmdline)" = "sleep 1000 " ]
    run ctr_ task exec --fifo-dir "$E/fifo" --exec-id e1 t-run sh -c 'echo from-exec; echo $$; cat /proc/1/cmdline'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = from-exec ]
    [ "${lines[1]}" != 1 ]
    [[ "${lines[2]}" == sleep* ]]
    run ctr_ task exec --fifo-dir "$E/fifo" --exec-id e2 t-run sh -c 'exit 4'
    [ "$status" -eq 4 ]
}

@test "ctr task exec -t: a terminal for an exec'd process" {
    ctr_run -d "$CTR_IMAGE" t-exect sleep 1000
    run script -qec "ctr -a $E/containerd.sock -n $CTR_NS task exec --fifo-dir $E/fifo -t --exec-id et t-exect tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/"* ]]
}

@test "ctr run -t: a terminal through the shim's console socket" {
    run script -qec "ctr -a $E/containerd.sock -n $CTR_NS run --runtime io.containerd.runc.v2 --runc-binary $RCRUN --fifo-dir $E/fifo -t --rm $CTR_IMAGE t-tty tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/0"* ]]
}

@test "ctr task kill: SIGTERM to a handler, SIGKILL, then delete" {
    ctr_run -d "$CTR_IMAGE" t-kill sh -c 'trap "exit 42" TERM; sleep 1000 & wait'
    sleep 0.3
    run ctr_ task kill t-kill
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 't-kill .*STOPPED'"
    run ctr_ task delete t-kill
    [ "$status" -eq 0 ]
    [[ "$output" == *"42"* ]]
    ctr_run -d "$CTR_IMAGE" t-kill9 sleep 1000
    run ctr_ task kill -s SIGKILL t-kill9
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 't-kill9 .*STOPPED'"
    run ctr_ task delete t-kill9
    [ "$status" -eq 0 ]
    [[ "$output" == *"137"* ]]
    run ctr_ task ls -q
    [[ "$output" != *t-kill* ]]
}

@test "ctr task kill --all reaches every process of the container" {
    ctr_run -d "$CTR_IMAGE" t-all sh -c 'sleep 1000 & sleep 1001 & wait'
    sleep 0.3
    run ctr_ task ps t-all
    [ "$(echo "$output" | grep -c '^[0-9]')" -eq 3 ]
    pids=$(echo "$output" | awk '/^[0-9]/ {print $1}')
    run ctr_ task kill -a -s KILL t-all
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 't-all .*STOPPED'"
    for p in $pids; do ! kill -0 "$p" 2>/dev/null; done
}

@test "ctr task delete --force of a running task" {
    ctr_run -d "$CTR_IMAGE" t-force sleep 1000
    pid=$(ctr_ task ls | awk '$1 == "t-force" {print $2}')
    run ctr_ task delete -f t-force
    [ "$status" -eq 0 ]
    ! kill -0 "$pid" 2>/dev/null
    [ -z "$(task_status t-force)" ]
}

@test "ctr task pause/resume" {
    ctr_run -d "$CTR_IMAGE" t-pause sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.t; mv /tmp/n.t /tmp/n; sleep 0.1; done'
    pid=$(ctr_ task ls | awk '$1 == "t-pause" {print $2}')
    wait_for 10 test -s "/proc/$pid/root/tmp/n"
    run ctr_ task pause t-pause
    [ "$status" -eq 0 ]
    [ "$(task_status t-pause)" = PAUSED ]
    a=$(cat "/proc/$pid/root/tmp/n")
    sleep 0.6
    [ "$(cat "/proc/$pid/root/tmp/n")" = "$a" ]
    run ctr_ task resume t-pause
    [ "$status" -eq 0 ]
    [ "$(task_status t-pause)" = RUNNING ]
    sleep 0.6
    [ "$(cat "/proc/$pid/root/tmp/n")" -gt "$a" ]
}

@test "ctr task ps and metrics: processes and cgroup statistics" {
    ctr_run -d --memory-limit 67108864 "$CTR_IMAGE" t-met sh -c 'sleep 1000 & wait'
    sleep 0.3
    run ctr_ task ps t-met
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | grep -c '^[0-9]')" -eq 2 ]
    run ctr_ task metrics t-met
    [ "$status" -eq 0 ]
    echo "$output" | grep -Eq '^(memory.limit_in_bytes +67108864|memory.max +67108864)'
    echo "$output" | grep -Eq '^pids.current +2'
    echo "$output" | grep -Eq '^(memory.usage_in_bytes|memory.usage) +[1-9][0-9]*'
}

@test "ctr run --memory-limit --cpu-shares: limits read from inside (cgroup mount)" {
    run ctr_run --rm --memory-limit 33554432 --cpu-shares 512 \
        --mount type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:nodev:noexec \
        "$CTR_IMAGE" t-lim sh -c 'grep memory /proc/self/cgroup
            cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null ||
            cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.weight'
    [ "$status" -eq 0 ]
    [[ "${lines[0]}" == *"/$CTR_NS/t-lim" ]]
    [ "${lines[1]}" = 33554432 ]
    [ "${lines[2]}" = 512 ] || [ "${lines[2]}" = 20 ]
}

@test "ctr container delete after the task is gone leaves no rcrun state" {
    ctr_run -d "$CTR_IMAGE" t-gone sleep 1000
    [ -f "/run/containerd/runc/$CTR_NS/t-gone/state.json" ]
    ctr_ task kill -s KILL t-gone
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 't-gone .*STOPPED'"
    ctr_ task delete t-gone
    ctr_ container delete t-gone
    [ ! -e "/run/containerd/runc/$CTR_NS/t-gone" ]
    [ ! -e "/sys/fs/cgroup/pids/$CTR_NS/t-gone" ]
}
