#!/bin/sh
# Runs the whole test suite: unit tests, doc tests, and the integration
# tests that start real containers on the busybox rootfs.
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
