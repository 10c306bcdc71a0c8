#!/bin/sh
# Fuzzes config.json handling (parsing, validation, mount options, cgroup
# v1/v2 mapping, the v2 device eBPF program) with cargo fuzz (libFuzzer),
# starting from the seeds in fuzz/seeds (rcrun spec's output and configs
# shaped like podman's, containerd's and docker's).
#
#   sh scripts/fuzz.sh [SECONDS]     (default: 300)
#
# Crashes land in fuzz/artifacts/config/; reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run config fuzz/artifacts/config/crash-...
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
apt_install clang
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo fuzz passes nightly-only flags (sanitizers); this machine has one
# stable toolchain, which accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
mkdir -p fuzz/corpus/config
cargo fuzz run config fuzz/corpus/config fuzz/seeds -- \
    -max_total_time="${1:-300}" -timeout=10 -rss_limit_mb=2048
