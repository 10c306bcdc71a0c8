# Sourced by the scripts: installs what building and testing rcrun needs
# on a Debian 12 machine, as root. Idempotent and quiet when all is there.

die() { echo "$0: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (containers need it)"

# apt_install PKG...: installs the packages that are missing.
apt_install() {
    missing=""
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
}

# ensure_rust: a cargo new enough for the crate (rust-version in Cargo.toml).
ensure_rust() {
    [ -x "$HOME/.cargo/bin/cargo" ] && PATH="$HOME/.cargo/bin:$PATH"
    if command -v cargo >/dev/null 2>&1; then
        v=$(cargo --version | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p')
        [ "${v:-0}" -ge 85 ] && return 0
    fi
    # Debian 12 ships Rust 1.63, too old for the crate's dependencies.
    apt_install curl ca-certificates
    echo "installing the Rust toolchain with rustup" >&2
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    PATH="$HOME/.cargo/bin:$PATH"
}

ensure_deps() {
    apt_install gcc libc6-dev pkg-config libseccomp-dev busybox-static apparmor passwd util-linux strace
    # tests/image_pull.rs: a local registry, filled from umoci-made layouts;
    # openssl makes its certificates and signs the token realm's JWTs.
    apt_install docker-registry skopeo umoci openssl
    # tests/cri.rs: containerd's CRI plugin with rcrun's shim, pod networks
    # through the CNI plugins, and protoc for the CRI client's build.
    apt_install containerd containernetworking-plugins protobuf-compiler
    ensure_rust
    export PATH
}

# build_release: builds the rcrun command as it ships, a static binary
# (glibc's crt-static: no dynamic loader work in either of the two execs
# of every create/run/exec; scripts/bench.sh) and sets BUILT_BIN to it
# (and RCRUN_BIN for rcrun).
# It is not position-independent: a static PIE relocates itself at every
# start, which dirties its 190 KB of relocated data in both execs (the
# peak RSS of `run` drops from 3.5 to 3.2 MB without). The kernel still
# randomizes the stack, heap and mmap bases; RCRUN_PIE=1 keeps a PIE.
# Plain `cargo build --release` still gives a dynamic PIE.
build_release() {
    # or rcrun-image (the image commands, which rcrun execs), or
    # containerd-shim-rcrun-v2 (the shim, cargo feature shim)
    bin=${1:-rcrun}
    host=$(rustc -vV | sed -n 's/^host: //p')
    reloc="-C relocation-model=static"
    [ "${RCRUN_PIE:-0}" = 1 ] && reloc=""
    features=""
    [ "$bin" = containerd-shim-rcrun-v2 ] && features="--features shim"
    # shellcheck disable=SC2086
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static $reloc" \
        cargo build --release --locked -q --target "$host" --bin "$bin" $features
    t=${CARGO_TARGET_DIR:-target}
    case $t in /*) ;; *) t=$PWD/$t ;; esac
    BUILT_BIN=$t/$host/release/$bin
    [ -x "$BUILT_BIN" ] || die "no $bin binary at $BUILT_BIN"
    [ "$bin" = rcrun ] && RCRUN_BIN=$BUILT_BIN
    return 0
}
