#!/usr/bin/env bats
# containerd 1.6 with rcrun's own shim (io.containerd.rcrun.v2,
# containerd-shim-rcrun-v2 from RCRUN_SHIM): `ctr run --runtime
# io.containerd.rcrun.v2`, no runc shim and no rcrun command in between,
# against a containerd started here in a temp dir and a namespace of its
# own.

load helpers

setup_file() {
    engines_require "${RCRUN_SHIM:?set RCRUN_SHIM (scripts/test-engines.sh does)}"
    engines_init containerd-shim
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

shim_run() {
    ctr_ run --runtime io.containerd.rcrun.v2 --fifo-dir "$E/fifo" "$@"
}

task_status() {
    ctr_ task ls | awk -v t="$1" '$1 == t {print $3}'
}

task_pid() {
    ctr_ task ls | awk -v t="$1" '$1 == t {print $2}'
}

@test "rcrun shim: ctr run --rm echo hi, and the exit status" {
    run shim_run --rm "$CTR_IMAGE" s-hi echo hi
    [ "$status" -eq 0 ]
    [ "$output" = hi ]
    run shim_run --rm "$CTR_IMAGE" s-exit sh -c 'echo out; exit 5'
    [ "$status" -eq 5 ]
    [ "$output" = out ]
}

@test "rcrun shim: the task is the shim's child, no runc shim or rcrun command runs" {
    shim_run -d "$CTR_IMAGE" s-child sleep 1000
    pid=$(task_pid s-child)
    shim=$(awk '/^PPid:/ {print $2}' /proc/$pid/status)
    # The sealed shim names itself after its argv[0].
    [[ "$(tr '\0' ' ' < /proc/$shim/cmdline)" == *containerd-shim-rcrun-v2*" -id s-child "* ]]
    ! pgrep -f containerd-shim-runc-v2 >/dev/null
    ! pgrep -x rcrun >/dev/null
}

@test "rcrun shim: stdin reaches the container and ends with ctr's" {
    run sh -c "echo hello-stdin | ctr -a $E/containerd.sock -n $CTR_NS run --runtime io.containerd.rcrun.v2 --fifo-dir $E/fifo --rm $CTR_IMAGE s-in cat"
    [ "$status" -eq 0 ]
    [ "$output" = hello-stdin ]
}

@test "rcrun shim: exec, its output and exit status" {
    shim_run -d "$CTR_IMAGE" s-run sleep 1000
    [ "$(task_status s-run)" = RUNNING ]
    run ctr_ task exec --fifo-dir "$E/fifo" --exec-id e1 s-run sh -c 'echo from-exec; echo $$; cat /proc/1/cmdline'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = from-exec ]
    [ "${lines[1]}" != 1 ]
    [[ "${lines[2]}" == sleep* ]]
    run ctr_ task exec --fifo-dir "$E/fifo" --exec-id e2 s-run sh -c 'exit 4'
    [ "$status" -eq 4 ]
}

@test "rcrun shim: terminals for run -t and exec -t, resized to ctr's console" {
    run script -qec "ctr -a $E/containerd.sock -n $CTR_NS run --runtime io.containerd.rcrun.v2 --fifo-dir $E/fifo -t --rm $CTR_IMAGE s-tty tty" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/0"* ]]
    shim_run -d "$CTR_IMAGE" s-exect sleep 1000
    # ctr sends its console's size after the start: the process waits for it.
    run script -qec "stty rows 33 cols 101; ctr -a $E/containerd.sock -n $CTR_NS task exec --fifo-dir $E/fifo -t --exec-id et s-exect sh -c 'tty; while [ \"\$(stty size)\" != \"33 101\" ]; do sleep 0.1; done; stty size'" /dev/null
    [ "$status" -eq 0 ]
    [[ "$output" == *"/dev/pts/"* ]]
    [[ "$output" == *"33 101"* ]]
}

@test "rcrun shim: kill, SIGTERM to a handler, SIGKILL, then delete with the status" {
    shim_run -d "$CTR_IMAGE" s-kill sh -c 'trap "exit 42" TERM; sleep 1000 & wait'
    sleep 0.3
    run ctr_ task kill s-kill
    [ "$status" -eq 0 ]
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 's-kill .*STOPPED'"
    run ctr_ task delete s-kill
    [ "$status" -eq 0 ]
    [[ "$output" == *"42"* ]]
    shim_run -d "$CTR_IMAGE" s-kill9 sleep 1000
    ctr_ task kill -s SIGKILL s-kill9
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 's-kill9 .*STOPPED'"
    run ctr_ task delete s-kill9
    [ "$status" -eq 0 ]
    [[ "$output" == *"137"* ]]
}

@test "rcrun shim: kill --all, ps, and delete --force" {
    shim_run -d "$CTR_IMAGE" s-all sh -c 'sleep 1000 & sleep 1001 & wait'
    sleep 0.3
    run ctr_ task ps s-all
    [ "$(echo "$output" | grep -c '^[0-9]')" -eq 3 ]
    pids=$(echo "$output" | awk '/^[0-9]/ {print $1}')
    ctr_ task kill -a -s KILL s-all
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 's-all .*STOPPED'"
    for p in $pids; do ! kill -0 "$p" 2>/dev/null; done
    shim_run -d "$CTR_IMAGE" s-force sleep 1000
    pid=$(task_pid s-force)
    run ctr_ task delete -f s-force
    [ "$status" -eq 0 ]
    ! kill -0 "$pid" 2>/dev/null
    [ -z "$(task_status s-force)" ]
}

@test "rcrun shim: pause, resume and metrics" {
    shim_run -d "$CTR_IMAGE" s-pause sh -c 'while :; do sleep 0.1; done'
    ctr_ task pause s-pause
    [ "$(task_status s-pause)" = PAUSED ]
    ctr_ task resume s-pause
    [ "$(task_status s-pause)" = RUNNING ]
    run ctr_ task metrics s-pause
    [ "$status" -eq 0 ]
    [[ "$output" == *memory.usage* ]]
    [[ "$output" == *pids.current* ]]
}

@test "rcrun shim: one shim serves the containers of a pod" {
    shim_run -d --annotation io.kubernetes.cri.sandbox-id=pod-a "$CTR_IMAGE" s-p1 sleep 1000
    shim_run -d --annotation io.kubernetes.cri.sandbox-id=pod-a "$CTR_IMAGE" s-p2 sleep 1000
    shim_run -d "$CTR_IMAGE" s-p3 sleep 1000
    ppid_of() { awk '/^PPid:/ {print $2}' /proc/"$(task_pid "$1")"/status; }
    [ "$(ppid_of s-p1)" = "$(ppid_of s-p2)" ]
    [ "$(ppid_of s-p1)" != "$(ppid_of s-p3)" ]
    shim=$(ppid_of s-p1)
    # The pod's shim stays while one of its containers does.
    ctr_ task kill -s KILL s-p1
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 's-p1 .*STOPPED'"
    ctr_ task delete s-p1
    kill -0 "$shim"
    [ "$(task_status s-p2)" = RUNNING ]
    ctr_ task kill -s KILL s-p2
    wait_for 10 sh -c "ctr -a $E/containerd.sock -n $CTR_NS task ls | grep -q 's-p2 .*STOPPED'"
    ctr_ task delete s-p2
    wait_for 10 sh -c "! kill -0 $shim 2>/dev/null"
}
