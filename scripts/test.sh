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
grep -E '^test result:' "$LOG" | awk '
    { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
    END { printf "all targets: %d passed, %d failed\n", p, f }'
