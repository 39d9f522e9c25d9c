#!/usr/bin/env bash
# Builds the image with podman, offline (the host's cargo registry is mounted into the build;
# HTTPS from inside a build is not trusted on these machines), and reports its size and what
# the migrator adds to the base. Usage: scripts/build-image.sh [TAG]   (default yogaflow-migrate:test)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-yogaflow-migrate:test}
# shellcheck disable=SC1091
[ -f "$root/target/container.env" ] && . "$root/target/container.env"
: "${CONTAINERS_CONF:?run scripts/container-setup.sh first}"
export CONTAINERS_CONF
rust_version=$(rustc --version | awk '{print $2}')
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
# Make sure every crate of Cargo.lock is in the host cache before going offline.
cargo fetch --locked --manifest-path "$root/Cargo.toml" >/dev/null

start=$(date +%s)
podman build --pull=never -q \
  --build-arg RUST_VERSION="$rust_version" \
  --build-arg CARGO_NET_OFFLINE=true \
  -v "$registry:/usr/local/cargo/registry" \
  -t "$tag" "$root" >/dev/null
echo "built $tag in $(( $(date +%s) - start )) s"

size() { podman image inspect --format '{{.Size}}' "$1"; }
total=$(size "$tag")
base=$(size docker.io/library/debian:bookworm-slim)
binary=$(podman run --rm --entrypoint sh "$tag" -c 'wc -c < /usr/local/bin/yogaflow-migrate')
printf 'runtime image: %.1f MB; base: %.1f MB; added: %.1f MB; migrator binary: %.1f MB\n' \
  "$(echo "$total / 1000000" | bc -l)" "$(echo "$base / 1000000" | bc -l)" \
  "$(echo "($total - $base) / 1000000" | bc -l)" "$(echo "$binary / 1000000" | bc -l)"
