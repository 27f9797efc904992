#!/usr/bin/env bash
# Builds the browser package: web/dist/pkg/gaussdiv.js + gaussdiv_bg.wasm
# (wasm-bindgen --target web, module `gaussdiv`), beside the demo page
# web/dist/index.html. Serve web/dist with any static server, e.g.
#   python3 -m http.server --directory web/dist
#
# Installs what it needs when missing: the wasm32-unknown-unknown target
# (rustup) and wasm-bindgen-cli at the version in Cargo.lock (cargo install,
# about 10 minutes once; it stays in ~/.cargo/bin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ -z "$WB_VERSION" ]; then
    echo "build-web.sh: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    echo "== rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WB_VERSION" ]; then
    echo "== cargo install wasm-bindgen-cli --version $WB_VERSION (once; about 10 minutes)"
    cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
echo "== cargo build -p gaussdiv-web --target wasm32-unknown-unknown --release"
# simd128: every browser with WebGPU runs wasm SIMD; the CPU loops vectorise with it.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128" \
    cargo build -p gaussdiv-web --lib --target wasm32-unknown-unknown --release
echo "== wasm-bindgen --target web --out-dir web/dist/pkg --out-name gaussdiv"
rm -rf web/dist/pkg
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg --out-name gaussdiv \
    "$TARGET_DIR/wasm32-unknown-unknown/release/gaussdiv_web.wasm"
ls -l web/dist/pkg
printf '== gaussdiv_bg.wasm: %s bytes, %s gzipped\n' \
    "$(wc -c < web/dist/pkg/gaussdiv_bg.wasm)" "$(gzip -9c web/dist/pkg/gaussdiv_bg.wasm | wc -c)"
