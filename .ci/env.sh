# Sourced (not executed) by the .ci scripts: puts the project's pinned tools first on PATH.
#   tests/e2e/node_modules/.bin  -> wasm-opt version_132 (npm binaryen@132.0.0), which Trunk must find
#                                   before any other wasm-opt (Debian's binaryen is too old)
#   $HOME/.cargo/bin             -> trunk 0.21.14, wasm-bindgen 0.2.130, wasm-bindgen-test-runner, cargo
# shellcheck shell=bash
GLASSBOX_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export GLASSBOX_ROOT
export PATH="$GLASSBOX_ROOT/tests/e2e/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# Trunk's own update check needs the network, which this machine doesn't have: skip it.
export TRUNK_SKIP_VERSION_CHECK=true
