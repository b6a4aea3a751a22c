#!/usr/bin/env bash
# Builds the Lambda zips of get-key and list-keys with cargo-lambda, for x86_64 and arm64,
# and copies them to OUT/<arch>/<function>.zip (the two architectures share
# target/lambda/<function>/, so each is copied before the next build).
#
#   bench/zips.sh OUT              (ARCHS="arm64" for one architecture only)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/zips.sh OUT}
target=${CARGO_TARGET_DIR:-$PWD/target}
command -v cargo-lambda >/dev/null || { echo "zips: cargo-lambda is not installed (make tools)" >&2; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$'; then
  rustup target add aarch64-unknown-linux-gnu
fi
for arch in ${ARCHS:-x86_64 arm64}; do
  flag=""; [ "$arch" = arm64 ] && flag="--arm64"
  cargo lambda build --release --locked $flag --output-format zip -p get-key -p list-keys
  mkdir -p "$out/$arch"
  for fn in get-key list-keys; do
    cp "$target/lambda/$fn/bootstrap.zip" "$out/$arch/$fn.zip"
  done
done
ls -l "$out"/*/*.zip
