#!/bin/bash
# scripts/v2vm.sh CMD...  — run CMD inside a throwaway QEMU guest (Debian's
# kernel) with a pure cgroup v2 hierarchy; used by scripts/test-v2.sh so
# that the suite also runs where most nodes are: cgroup v2 only.
# (cpu cpuset io memory pids enabled in the root subtree_control).
# Guest root = host / shared read-only over 9p; V2VM_SHARE (default: the current directory) shared
# read-write at the same path;
# /tmp /run /var/tmp /var/lib/containers /var/lib/cni /root /var/log are fresh tmpfs. Prints CMD's output, exits with CMD's exit code.
# Needs Debian packages: qemu-system-x86 linux-image-amd64 busybox-static.
# Env: V2VM_MEM (default 2048), V2VM_CPUS (default 2), V2VM_KERNEL (default newest /boot/vmlinuz-*),
#      V2VM_TIMEOUT (seconds, default 600), V2VM_DEBUG=1 to see the boot log,
#      V2VM_CONSOLE=1 to stream CMD output over the serial console (with V2VM_DEBUG=1),
#      V2VM_ENV="VAR1 VAR2" to pass host env vars, V2VM_SHARE=DIR for the read-write share,
#      V2VM_ACCEL=kvm to try KVM (hangs on these nested-virtualisation hosts),
#      V2VM_SYSTEMD=1 to boot the host's systemd as PID 1 (CMD runs as a service, with the system bus).
# Accel: TCG (software) by default: ~7-14 s per run on this 2-core host.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${V2VM_CACHE:-/var/tmp/rcrun-v2vm-cache}
SHARE=$(cd "${V2VM_SHARE:-$PWD}" && pwd)
KERNEL=${V2VM_KERNEL:-$(ls -1v /boot/vmlinuz-* | tail -1)}
KVER=${KERNEL#/boot/vmlinuz-}
MEM=${V2VM_MEM:-2048}
CPUS=${V2VM_CPUS:-2}
TMO=${V2VM_TIMEOUT:-600}
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
[ -r "$KERNEL" ] || { echo "v2vm: no kernel $KERNEL (apt-get install linux-image-amd64)" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "v2vm: apt-get install qemu-system-x86" >&2; exit 2; }
BB=/bin/busybox   # from busybox-static
[ -x "$BB" ] || { echo "v2vm: apt-get install busybox-static" >&2; exit 2; }
INITRD=$CACHE/initramfs-$KVER-$(md5sum <"$0" | cut -c1-8).cpio.gz  # rebuilt when this script changes

build_initramfs() {
  local d; d=$(mktemp -d)
  mkdir -p "$d"/{bin,dev,proc,sys,newroot,modules}
  cp "$BB" "$d/bin/busybox"
  for a in sh mount umount mkdir insmod cat echo sleep poweroff reboot chroot switch_root ln mknod; do ln -s busybox "$d/bin/$a"; done
  local mods
  mods=$(for m in virtio_pci virtio_blk 9pnet_virtio 9p overlay; do modprobe -S "$KVER" --show-depends "$m"; done \
         | awk '$1=="insmod"{print $2}' | awk '!s[$0]++')
  : > "$d/modules/order"
  for m in $mods; do
    case "$m" in
      *.ko) cp "$m" "$d/modules/";;
      *.ko.xz) xz -dc "$m" > "$d/modules/$(basename "${m%.xz}")"; m=${m%.xz};;
      *.ko.zst) zstd -qdc "$m" > "$d/modules/$(basename "${m%.zst}")"; m=${m%.zst};;
    esac
    echo "$(basename "$m")" >> "$d/modules/order"
  done
  cat > "$d/init" <<'EOF'
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do insmod /modules/$m 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /newroot || { echo "v2vm: 9p root mount failed"; poweroff -f; }
R=/newroot
mount -t devtmpfs dev $R/dev; mkdir -p $R/dev/pts $R/dev/shm 2>/dev/null
ln -sf /proc/self/fd $R/dev/fd; ln -sf /proc/self/fd/0 $R/dev/stdin; ln -sf /proc/self/fd/1 $R/dev/stdout; ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t proc proc $R/proc; mount -t sysfs sys $R/sys
for t in tmp run var/tmp var/lib/containers var/lib/cni root var/log; do mount -t tmpfs -o mode=0755 tmpfs $R/$t 2>/dev/null; done
chmod 1777 $R/tmp $R/var/tmp
mount -t devpts -o newinstance,ptmxmode=0666 devpts $R/dev/pts; mount -t tmpfs -o mode=1777 shm $R/dev/shm
C=$R/run/.v2vm; mkdir -p $C; mount -t 9p -o trans=virtio,version=9p2000.L,cache=none v2ctl $C || echo "v2vm: ctl mount failed"
S=$(cat $C/share); mkdir -p "$R$S" 2>/dev/null; mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=none work "$R$S" || echo "v2vm: share mount failed"
mount -t cgroup2 -o nsdelegate cgroup2 $R/sys/fs/cgroup || mount -t cgroup2 cgroup2 $R/sys/fs/cgroup
# enable every available controller for children of the root cgroup
c=""; for x in $(cat $R/sys/fs/cgroup/cgroup.controllers); do c="$c +$x"; done
echo "$c" > $R/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || \
  for x in $c; do echo "$x" > $R/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; done
hostname v2vm 2>/dev/null
if grep -q v2vm.console /proc/cmdline; then O=/dev/console; E=/dev/console; else O=/run/.v2vm/out; E=/run/.v2vm/err; fi
# Make the host root the namespace's root (as switch_root does) rather
# than chroot into it: in a chroot the kernel refuses new user namespaces.
if grep -q v2vm.systemd /proc/cmdline; then
  # Boot the host's systemd as PID 1, into a target of our own: the
  # command runs as a service once the system bus is up.
  U=$R/run/systemd/system; mkdir -p $U
  printf '%s\n' '[Unit]' 'Description=v2vm' 'Requires=v2vm.service dbus.socket' 'AllowIsolate=yes' > $U/v2vm.target
  printf '%s\n' '[Unit]' 'Description=v2vm command' 'Requires=dbus.socket' 'After=dbus.socket basic.target' \
    '[Service]' 'Type=oneshot' 'ExecStart=/bin/sh /run/.v2vm-run.sh' > $U/v2vm.service
  printf '%s\n' 'cd "$(cat /run/.v2vm/cwd)" 2>/dev/null || cd /; . /run/.v2vm/env' \
    "/bin/sh /run/.v2vm/cmd.sh </dev/null >$O 2>$E; echo \$? > /run/.v2vm/rc; sync; /bin/busybox poweroff -f" | sed "s|$R||g" > $R/run/.v2vm-run.sh
  cd $R
  mount --move . /
  # (The host root has /.dockerenv: systemd believes it runs in a
  # container, and takes its unit from argv, not the kernel command line.)
  exec chroot . /lib/systemd/systemd --unit=v2vm.target --show-status=0
fi
cd $R
mount --move . /
exec chroot . /bin/sh -c 'cd "$(cat /run/.v2vm/cwd)" 2>/dev/null || cd /; . /run/.v2vm/env; /bin/sh /run/.v2vm/cmd.sh </dev/null >'"$O"' 2>'"$E"'; echo $? > /run/.v2vm/rc; sync; /bin/busybox poweroff -f'
EOF
  chmod +x "$d/init"
  mkdir -p "$CACHE"
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp" && mv "$INITRD.tmp" "$INITRD"
  rm -rf "$d"
}
[ -s "$INITRD" ] || build_initramfs

CTL=$(mktemp -d /tmp/v2vm.XXXXXX)
trap 'rm -rf "$CTL"' EXIT
{ printf 'exec'; for a in "$@"; do printf ' %q' "$a"; done; printf '\n'; } > "$CTL/cmd.sh"
# A small scratch disk, so that block I/O limits have a device to act on.
truncate -s 16M "$CTL/scratch.img"
printf '%s\n' "$PWD" > "$CTL/cwd"
printf '%s\n' "$SHARE" > "$CTL/share"
{ echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb'
  [ -n "${V2VM_ENV:-}" ] && for v in $V2VM_ENV; do printf 'export %s=%q\n' "$v" "${!v}"; done
  true; } > "$CTL/env"

# Nested KVM on this host hangs right after SeaBIOS ("-cpu host" also aborts: failed to set MSR 0x10a),
# so TCG is the default; V2VM_ACCEL=kvm tries KVM.
if [ "${V2VM_ACCEL:-tcg}" = kvm ]; then ACCEL="-enable-kvm -cpu host,-arch-capabilities"; else ACCEL="-accel tcg,thread=multi -cpu max"; fi
BIOS=""; [ -r /usr/share/qemu/qboot.rom ] && BIOS="-bios /usr/share/qemu/qboot.rom"
APPEND="console=ttyS0 rdinit=/init panic=-1 quiet loglevel=${V2VM_LOGLEVEL:-0} ${V2VM_CONSOLE:+v2vm.console} systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
# V2VM_SYSTEMD=1: systemd is PID 1 (the host's /etc, without its fstab).
[ "${V2VM_SYSTEMD:-0}" = 1 ] && APPEND="$APPEND v2vm.systemd systemd.unit=v2vm.target fstab=0 systemd.show_status=0"
qfs() { echo "-fsdev local,id=$1,path=$2,security_model=passthrough,multidevs=remap$3 -device virtio-9p-pci,fsdev=$1,mount_tag=$1"; }
set +e
# shellcheck disable=SC2046
timeout "$TMO" qemu-system-x86_64 $ACCEL -m "$MEM" -smp "$CPUS" -nodefaults -no-user-config -nographic \
  -serial stdio -monitor none -no-reboot -display none $BIOS \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
  $(qfs hostroot / ,readonly=on) $(qfs work "$SHARE" "") $(qfs v2ctl "$CTL" "") \
  -drive if=virtio,format=raw,file="$CTL/scratch.img" \
  2>"$CTL/qemu.err" | if [ "${V2VM_DEBUG:-0}" = 1 ]; then cat; else cat >/dev/null; fi
qrc=${PIPESTATUS[0]}
[ -f "$CTL/out" ] && cat "$CTL/out"
[ -f "$CTL/err" ] && cat "$CTL/err" >&2
if [ -s "$CTL/rc" ]; then rc=$(cat "$CTL/rc"); else
  echo "v2vm: guest gave no exit code (qemu rc=$qrc)" >&2; cat "$CTL/qemu.err" >&2; rc=125; fi
exit "$rc"
