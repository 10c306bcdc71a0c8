#!/bin/sh
# Builds the embedded busybox root filesystem and a bundle around it.
#
#   rootfs/build-busybox.sh [BUNDLE_DIR]     (default: target/busybox-bundle)
#
# BUNDLE_DIR/rootfs gets Debian's statically linked busybox with every
# applet linked, /etc/passwd and /etc/group (root, a user 1000 and nobody),
# and the empty directories a container needs. BUNDLE_DIR/config.json is
# written by `rcrun spec` when an rcrun binary is given in $RCRUN and no
# config.json exists yet. No network is needed beyond Debian's packages.
set -eu
BUNDLE=${1:-target/busybox-bundle}
BB=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    echo "installing busybox-static" >&2
    apt-get install -y -qq busybox-static >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null && apt-get install -y -qq busybox-static >/dev/null
    }
fi
R="$BUNDLE/rootfs"
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" \
         "$R/tmp" "$R/root" "$R/home/user" "$R/var/tmp" "$R/run"
chmod 1777 "$R/tmp" "$R/var/tmp"
cp "$BB" "$R/bin/busybox.new" && mv "$R/bin/busybox.new" "$R/bin/busybox"
for a in $("$BB" --list); do
    [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
done
cat > "$R/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$R/etc/group" <<'G'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
G
chown 1000:1000 "$R/home/user"
echo "rcrun-busybox" > "$R/etc/hostname"
if [ -n "${RCRUN:-}" ] && [ ! -e "$BUNDLE/config.json" ]; then
    (cd "$BUNDLE" && "$RCRUN" spec)
fi
echo "$BUNDLE"
