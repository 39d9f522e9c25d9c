#!/usr/bin/env bash
# Builds the one-file static binary: OpenSSL vendored (built from source, needs perl and make)
# and glibc linked in (`crt-static`; the musl target is not available on these machines).
# `--target` keeps build scripts and proc-macros dynamic, as they must be.
# Usage: scripts/build-static.sh   → prints the path of the binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
  cargo build --release --locked --features vendored-openssl --target "$target" \
  --manifest-path "$root/Cargo.toml" >&2
echo "${CARGO_TARGET_DIR:-$root/target}/$target/release/yogaflow-migrate"
