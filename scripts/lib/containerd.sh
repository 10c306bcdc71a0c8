# containerd_toml DIR: writes DIR/containerd.toml for a containerd of its
# own under DIR (root, state, its sockets), without the CRI plugin and
# metrics. Shared by tests/engines/helpers.bash and scripts/bench-shim.sh.
containerd_toml() {
    cat >"$1/containerd.toml" <<EOT
version = 2
root = "$1/containerd/root"
state = "$1/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$1/containerd.sock"
[ttrpc]
  address = "$1/containerd.sock.ttrpc"
[debug]
  address = "$1/containerd-debug.sock"
[metrics]
  address = ""
EOT
}
