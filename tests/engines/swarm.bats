#!/usr/bin/env bats
# A single-node Docker Swarm whose dockerd runs rcrun as its default
# runtime: service tasks are containers created, started, killed and
# deleted by rcrun through dockerd's containerd and runc shim.

load helpers

setup_file() {
    engines_init swarm
    { dockerd_start --default-runtime rcrun &&
        docker_ swarm init --advertise-addr 127.0.0.1 >/dev/null; } ||
        { engines_cleanup; return 1; }
}

teardown_file() {
    engines_cleanup
    engines_check_clean
}

setup() {
    engines_dir
}

# Number of the service's tasks that should run and do run.
running_tasks() {
    docker_ service ps "$1" --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running'
}

# wait_tasks SERVICE N: N tasks running (and as many task containers up).
wait_tasks() {
    wait_for 60 sh -c "[ \"\$(/usr/bin/docker -H unix://$E/docker.sock service ps $1 --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running')\" = $2 ] &&
        [ \"\$(/usr/bin/docker -H unix://$E/docker.sock ps -q --filter label=com.docker.swarm.service.name=$1 | wc -l)\" = $2 ]"
}

@test "swarm: rcrun is the runtime of the service's tasks" {
    [ "$(docker_ info --format '{{.Swarm.LocalNodeState}} {{.DefaultRuntime}}')" = "active rcrun" ]
}

@test "swarm: service create --replicas 3, scale to 5, a killed task is replaced" {
    run docker_ service create --detach --name web --replicas 3 "$IMAGE" sleep 1000
    [ "$status" -eq 0 ]
    wait_tasks web 3
    for c in $(docker_ ps -q --filter label=com.docker.swarm.service.name=web); do
        [ "$(docker_ inspect -f '{{.HostConfig.Runtime}}' "$c")" = rcrun ]
        run docker_ exec "$c" cat /proc/1/cmdline
        [ "$output" = "$(printf 'sleep\0001000')" ] || [[ "$output" == sleep* ]]
    done

    run docker_ service scale --detach web=5
    [ "$status" -eq 0 ]
    wait_tasks web 5

    # Kill one task's process from the host: swarm sees the task fail
    # (exit 137 through rcrun and the shim) and starts a replacement.
    victim=$(docker_ ps -q --no-trunc --filter label=com.docker.swarm.service.name=web | head -1)
    pid=$(docker_ inspect -f '{{.State.Pid}}' "$victim")
    [ "$pid" -gt 0 ]
    kill -KILL "$pid"
    wait_for 60 sh -c "/usr/bin/docker -H unix://$E/docker.sock service ps web --format '{{.DesiredState}} {{.Error}}' | grep -q 'Shutdown.*137'"
    wait_tasks web 5
    [ "$(docker_ inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$victim")" = "exited 137" ]
    run docker_ ps -q --no-trunc --filter label=com.docker.swarm.service.name=web
    [[ "$output" != *"$victim"* ]]

    run docker_ service rm web
    [ "$status" -eq 0 ]
    wait_for 60 sh -c "[ -z \"\$(/usr/bin/docker -H unix://$E/docker.sock ps -q --filter label=com.docker.swarm.service.name=web)\" ]"
}

@test "swarm: a task that exits non-zero is restarted by the service" {
    run docker_ service create --detach --name flaky --replicas 1 \
        --restart-condition on-failure --restart-delay 0s --restart-max-attempts 2 \
        "$IMAGE" sh -c 'echo attempt; exit 3'
    [ "$status" -eq 0 ]
    # One first attempt and two restarts, each failing with exit code 3.
    wait_for 60 sh -c "[ \"\$(/usr/bin/docker -H unix://$E/docker.sock service ps flaky --format '{{.Error}}' | grep -c 'exit (3)')\" -ge 3 ]"
    run docker_ service rm flaky
    [ "$status" -eq 0 ]
}
