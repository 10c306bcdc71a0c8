#!/bin/sh
# Runs the whole test suite: unit tests, doc tests, and the integration
# tests that start real containers on the busybox rootfs, on this
# machine's cgroups and then again in a cgroup v2 VM (scripts/test-v2.sh),
# then the real engines against rcrun (scripts/test-engines.sh).
#
#   sh scripts/test.sh
#
# Installs what it needs first (see scripts/lib/deps.sh). Every test uses
# its own state root and an absolute cgroupsPath, and removes both.
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
cargo build --locked --all-targets -q
cargo test --locked --all-targets --no-fail-fast 2>&1
cargo test --locked --doc 2>&1
echo "== the library from tokio (cargo feature tokio)"
cargo test --locked --features tokio --test library_tokio 2>&1
cargo test --locked --features tokio --doc 2>&1
echo "== registry pull (cargo feature pull) against docker-registry on 127.0.0.1"
cargo test --locked --features pull --test image_pull 2>&1
cargo test --locked --features pull --lib image::pull 2>&1
cargo test --locked --features pull --doc image::pull 2>&1
echo "== containerd-shim-rcrun-v2 driven as containerd drives it (cargo feature shim)"
cargo test --locked --features shim --test shim 2>&1
echo "== Kubernetes' path: containerd's CRI with the runtime handler rcrun, over the CRI"
cargo test --locked --features shim --test cri 2>&1
echo "== the same tests on a pure cgroup v2 system (QEMU)"
sh scripts/test-v2.sh
echo "== podman, containerd, dockerd and a swarm service driving rcrun"
sh scripts/test-engines.sh
