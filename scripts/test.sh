#!/usr/bin/env bash
# Runs every test of gaussdiv on a fresh machine.
#
# When no Vulkan driver is installed it installs Mesa's lavapipe (Vulkan on
# the CPU) through apt-get, so that the GPU tests really run; it sets
# GAUSSDIV_REQUIRE_GPU=1 so that a missing adapter fails those tests instead
# of skipping them. Then: format, lints, docs, every test target, doc tests,
# and the examples.
set -euo pipefail
# Works from any directory and with or without CARGO_TARGET_DIR set.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LOG="$(mktemp -t gaussdiv-test-output.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export GAUSSDIV_REQUIRE_GPU="${GAUSSDIV_REQUIRE_GPU:-1}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# No incremental caches: each run builds once, and they only take disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

have_vulkan() {
    local icd=0 lib=0
    for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        if compgen -G "$d/*.json" >/dev/null; then icd=1; fi
    done
    if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1'; then lib=1; fi
    [ "$icd" = 1 ] && [ "$lib" = 1 ]
}

if ! have_vulkan; then
    echo "== no Vulkan driver found: installing Mesa lavapipe (mesa-vulkan-drivers)"
    if command -v apt-get >/dev/null; then
        SUDO=""
        if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    else
        echo "apt-get not available: install a Vulkan driver (e.g. Mesa lavapipe) by hand" >&2
    fi
fi

echo "== disk: $(df -h . | awk 'NR==2 {print $4}') free"
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== cargo test --workspace --all-features --release (GAUSSDIV_REQUIRE_GPU=$GAUSSDIV_REQUIRE_GPU)"
cargo test --workspace --all-features --release -- --nocapture 2>&1 | tee "$LOG"
echo "== examples"
cargo run --release --quiet -p gaussdiv --example quickstart
cargo run --release --quiet -p gaussdiv --example wgpu_app
cargo run --release --quiet -p gaussdiv --example async_app
cargo run --release --quiet -p gaussdiv --example vae_kl

# The Python package (python/, docs/ARCHITECTURE.md §12): built by `pip install ./python`
# into a fresh virtual environment, then type checks and the pytest suite (Spark on
# local[2] included). The test dependencies live in a cached environment
# (~/.cache/gaussdiv/py-deps-*, keyed by the list below and the Python version) that the
# fresh one sees through a .pth file, so pyspark (~456 MB) is downloaded once; pip's own
# cache (~/.cache/pip) keeps the build backend (maturin).
echo "== Python package: pip install ./python into a fresh venv, mypy --strict, stubtest, pytest"
PY_DEPS=(numpy pytest mypy "pyarrow>=12" "pyspark>=4,<5" "pandas>=2,<3")
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "== installing python3-venv"
    SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
if ! command -v java >/dev/null; then
    echo "== installing a Java runtime for Spark (openjdk-17-jre-headless)"
    SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
PY_CACHE="${GAUSSDIV_PY_CACHE:-$HOME/.cache/gaussdiv}"
PY_KEY="$( (python3 --version; printf '%s\n' "${PY_DEPS[@]}") | sha256sum | cut -c1-12)"
PY_DEPS_ENV="$PY_CACHE/py-deps-$PY_KEY"
if [ ! -x "$PY_DEPS_ENV/bin/python" ] || [ ! -f "$PY_DEPS_ENV/.complete" ]; then
    rm -rf "$PY_DEPS_ENV"
    mkdir -p "$PY_CACHE"
    python3 -m venv "$PY_DEPS_ENV"
    "$PY_DEPS_ENV/bin/pip" install -q --upgrade pip
    "$PY_DEPS_ENV/bin/pip" install -q "${PY_DEPS[@]}"
    touch "$PY_DEPS_ENV/.complete"
fi
PY_VENV="$(mktemp -d -t gaussdiv-venv.XXXXXX)"
trap 'rm -f "$LOG"; rm -rf "$PY_VENV"' EXIT
python3 -m venv "$PY_VENV"
"$PY_DEPS_ENV/bin/python" -c 'import site; print(site.getsitepackages()[0])' \
    > "$("$PY_VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')/gaussdiv-test-deps.pth"
"$PY_VENV/bin/pip" install -q ./python
"$PY_VENV/bin/python" -m mypy --config-file python/pyproject.toml python/gaussdiv python/tests/typing_usage.py
(cd "$PY_VENV" && "$PY_VENV/bin/python" -m mypy.stubtest gaussdiv._gaussdiv)
export PYSPARK_PYTHON="$PY_VENV/bin/python"
GAUSSDIV_REQUIRE_SPARK=1 "$PY_VENV/bin/python" -m pytest -q -p no:cacheprovider python/tests 2>&1 | tee -a "$LOG"

# With GAUSSDIV_PRUNE=1 (.ci/run sets it) the native build outputs that the rest does not
# use are deleted here, keeping only the tool binary for the page test: the wasm32 build
# that follows needs several GB of its own, and a CI machine's disk has run out on it.
if [ "${GAUSSDIV_PRUNE:-0}" = 1 ]; then
    echo "== pruning native build outputs (GAUSSDIV_PRUNE=1): $(du -sh "$TARGET_DIR" 2>/dev/null | cut -f1) in $TARGET_DIR before"
    rm -rf "$TARGET_DIR/debug" "$TARGET_DIR/doc" "$TARGET_DIR/release/deps" "$TARGET_DIR/release/build" \
        "$TARGET_DIR/release/examples" "$TARGET_DIR/release/.fingerprint" "$TARGET_DIR/release/incremental" \
        "$TARGET_DIR/maturin" "$TARGET_DIR/wheels"
    echo "== $(du -sh "$TARGET_DIR" 2>/dev/null | cut -f1) left; $(df -h "$TARGET_DIR" | awk 'NR==2 {print $4}') free"
fi

# The browser build (web/, docs/ARCHITECTURE.md §13): the wasm-bindgen-test suites in headless
# Chromium with WebGPU (Chrome's SwiftShader adapter; the GPU tests fail without one since the
# suite is built with GAUSSDIV_REQUIRE_GPU=1), lints of the wasm32 build, then the demo page end
# to end (playwright-core driving /usr/bin/chromium). Installs what it needs: apt chromium and
# chromium-driver, the wasm32 target, wasm-bindgen-cli at the Cargo.lock version (once; it stays
# in ~/.cargo/bin), npm packages (cached by npm).
echo "== browser: wasm32 build, wasm-bindgen-test in headless Chromium, demo page end to end"
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "== installing chromium and chromium-driver"
    SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
WB_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi
if ! command -v wasm-bindgen-test-runner >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WB_VERSION" ]; then
    echo "== cargo install wasm-bindgen-cli --version $WB_VERSION (once; about 10 minutes)"
    cargo install -q wasm-bindgen-cli --version "$WB_VERSION"
fi
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-C target-feature=+simd128"
cargo clippy -p gaussdiv-web --target wasm32-unknown-unknown --all-targets -- -D warnings
cargo clippy -p gaussdiv -p gaussdiv-cli --no-default-features --lib --target wasm32-unknown-unknown -- -D warnings
(cd web && CHROMEDRIVER="$(command -v chromedriver)" WASM_BINDGEN_TEST_TIMEOUT=900 \
    CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --target wasm32-unknown-unknown -p gaussdiv-web --release) 2>&1 | tee -a "$LOG"
scripts/build-web.sh
(cd web && npm ci --no-audit --no-fund --loglevel=error && \
    GAUSSDIV_BIN="$TARGET_DIR/release/gaussdiv" node tests/page.mjs) 2>&1 | tee -a "$LOG"

grep -E '^test result:' "$LOG" | awk '
    { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
    END { printf "all Rust targets: %d passed, %d failed\n", p, f }'
grep -E '^[0-9]+ passed' "$LOG" | tail -1 | sed 's/^/Python (pytest): /'
