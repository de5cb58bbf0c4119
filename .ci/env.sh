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
# One cargo target folder for every checkout on this machine: a fresh clone (as CI makes) then compiles only
# the workspace's own crates, not the ~400 dependencies again in five profiles (dev, clippy's check for two
# targets, dev wasm32, the web release), which was most of a clean run's time. Cargo's fingerprints keep the
# builds apart (each crate's artifacts are keyed by its source, profile, features and target), and its lock
# serialises two builds at once. Set CARGO_TARGET_DIR to choose another; an unwritable cache keeps ./target.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  _glassbox_target="${XDG_CACHE_HOME:-$HOME/.cache}/glassbox/target"
  if mkdir -p "$_glassbox_target" 2>/dev/null && [ -w "$_glassbox_target" ]; then
    export CARGO_TARGET_DIR="$_glassbox_target"
  fi
  unset _glassbox_target
fi
