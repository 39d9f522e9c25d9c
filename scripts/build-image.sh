#!/usr/bin/env bash
# Builds the two images with podman, offline (the host's cargo registry is mounted into the
# build; HTTPS from inside a build is not trusted on these machines), and reports their sizes:
#   yogaflow-migrate:test  the root Dockerfile: the static migrator and the entrypoint, on scratch
#   yogaflow-backend:test  examples/backend/Dockerfile: the example app with the migrator in it
# Usage: scripts/build-image.sh [MIGRATOR_TAG [BACKEND_TAG]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
migrator=${1:-yogaflow-migrate:test}
backend=${2:-yogaflow-backend:test}
# shellcheck disable=SC1091
[ -f "$root/target/container.env" ] && . "$root/target/container.env"
: "${CONTAINERS_CONF:?run scripts/container-setup.sh first}"
export CONTAINERS_CONF
rust_version=$(rustc --version | awk '{print $2}')
registry="${CARGO_HOME:-$HOME/.cargo}/registry"
# Make sure every crate of Cargo.lock is in the host cache before going offline.
cargo fetch --locked --manifest-path "$root/Cargo.toml" >/dev/null

build() { # TAG DOCKERFILE
  local start
  start=$(date +%s)
  podman build --pull=never -q \
    --build-arg RUST_VERSION="$rust_version" \
    --build-arg CARGO_NET_OFFLINE=true \
    -v "$registry:/usr/local/cargo/registry" \
    -f "$2" -t "$1" "$root" >/dev/null
  echo "built $1 in $(( $(date +%s) - start )) s"
}
build "$migrator" "$root/Dockerfile"
build "$backend" "$root/examples/backend/Dockerfile"

mb() { echo "$(podman image inspect --format '{{.Size}}' "$1") / 1000000" | bc -l; }
printf 'migrator image (scratch: the static binary and the entrypoint): %.1f MB\n' "$(mb "$migrator")"
printf 'example backend image: %.1f MB (base debian:bookworm-slim %.1f MB)\n' \
  "$(mb "$backend")" "$(mb docker.io/library/debian:bookworm-slim)"
