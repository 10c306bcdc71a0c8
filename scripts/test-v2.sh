#!/bin/sh
# Runs the test suite again inside a VM with a pure cgroup v2 hierarchy
# (QEMU with Debian's kernel, software emulation: nested KVM does not boot
# on the machines this project runs on). The tests are built here and
# their binaries run in the guest, which sees this checkout read-write at
# the same path and the host's / read-only.
#
#   sh scripts/test-v2.sh [TEST-BINARY-NAME...]   (default: all)
#
# `containerd-shim` names tests/engines/containerd-shim.bats: containerd 1.6
# driving rcrun's shim through ctr, in the guest.
#
# tests/systemd.rs (the systemd cgroup driver) runs in a boot of its own
# with systemd as PID 1 (scripts/v2vm.sh, V2VM_SYSTEMD=1).
set -eu
cd "$(dirname "$0")/.."
. scripts/lib/deps.sh
ensure_deps
apt_install qemu-system-x86 linux-image-amd64 cpio zstd xz-utils kmod
# The tests, built on the host; their executables listed by cargo.
bins=$(cargo test --locked --no-run --tests --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/deps/')
[ -n "$bins" ] || die "no test binaries"
# The containerd shim's (cargo feature shim): v2 metrics, cgroups in the guest.
bins="$bins $(cargo test --locked --no-run --features shim --test shim --test systemd --test cri --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | grep '/deps/')"
want="$*"
list=""
sd=""
for b in $bins; do
    name=$(basename "$b" | sed 's/-[0-9a-f]*$//')
    [ "$name" = rcrun ] && continue           # the binary's own (empty) unit tests
    [ "$name" = rootless ] && continue        # useradd: the guest's /etc is the host's, read-only
    [ "$name" = image_pull ] && continue      # no cgroups in it (and built only with --features pull)
    [ "$name" = image ] && continue           # unpacking only, no cgroups (image_store runs there)
    if [ -z "$want" ] || echo " $want " | grep -q " $name "; then
        # The systemd cgroup driver's tests need systemd as PID 1: a boot
        # of their own, with Kubernetes' path (containerd's CRI) on it.
        case $name in systemd|cri) sd="$sd $b";; *) list="$list $b";; esac
    fi
done
# containerd 1.6 with rcrun's shim through ctr (tests/engines/containerd-shim.bats),
# with the binaries as they ship, built here.
bats_shim=""
if [ -z "$want" ] || echo " $want " | grep -q " containerd-shim "; then
    apt_install containerd bats
    build_release; RCRUN=$RCRUN_BIN
    build_release containerd-shim-rcrun-v2; RCRUN_SHIM=$BUILT_BIN
    export RCRUN RCRUN_SHIM
    bats_shim=tests/engines/containerd-shim.bats
fi
# The busybox rootfs is built on the host (the guest's / is read-only).
rootfs/build-busybox.sh target/test-bundle >/dev/null
runner=target/v2-run.sh
rc=0
if [ -n "$sd" ]; then
    sdrun=target/v2-run-systemd.sh
    {
        echo 'set -u; cd "$(dirname "$0")/.."; fail=0'
        for b in $sd; do
            echo "echo '== $(basename "$b") (systemd as PID 1)'; $b --test-threads=2 2>&1 || fail=1"
        done
        echo 'exit $fail'
    } > "$sdrun"
    V2VM_SYSTEMD=1 V2VM_MEM=${V2VM_MEM:-3072} V2VM_TIMEOUT=${V2VM_TIMEOUT:-2400} \
        bash scripts/v2vm.sh sh "$sdrun" || rc=1
fi
[ -n "$list$bats_shim" ] || exit $rc
{
    echo 'set -u; cd "$(dirname "$0")/.."; fail=0'
    echo 'echo "cgroup: $(stat -fc %T /sys/fs/cgroup), controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"'
    for b in $list; do
        echo "echo '== $(basename "$b")'; $b --test-threads=2 2>&1 || fail=1"
    done
    if [ -n "$bats_shim" ]; then
        echo "echo '== $bats_shim'; bats --timing $bats_shim 2>&1 || fail=1"
    fi
    echo 'exit $fail'
} > "$runner"
V2VM_ENV="${bats_shim:+RCRUN RCRUN_SHIM}" V2VM_MEM=${V2VM_MEM:-3072} V2VM_TIMEOUT=${V2VM_TIMEOUT:-2400} \
    bash scripts/v2vm.sh sh "$runner" || rc=1
exit $rc
