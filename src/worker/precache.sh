#!/bin/sh
# Trunk's post_build hook (Trunk.toml): writes the service worker, `sw.js`, into the finished build.
#
# The worker must know every file of this build to save it for offline use, and it must change whenever the
# build changes: a browser looks for a new service worker only by comparing the bytes of `sw.js`. So this
# script puts a list of the build's files (path and size) and a version (a hash of their contents) in front of
# the worker's code (src/worker/sw.js). A plain POSIX script with coreutils: it runs on any machine that builds.
set -eu
out="${TRUNK_STAGING_DIR:?this script is run by trunk build}"
code="${TRUNK_SOURCE_DIR:-.}/src/worker/sw.js"
cd "$out"
rm -f sw.js
list=$(find . -type f | sed 's|^\./||' | LC_ALL=C sort)
version=$(printf '%s\n' "$list" | while read -r f; do sha256sum "$f"; done | sha256sum | cut -c1-16)
total=0
entries=""
for f in $list; do
  size=$(stat -c %s "$f")
  total=$((total + size))
  entries="$entries${entries:+,}[\"$f\",$size]"
done
{
  echo "// Written by src/worker/precache.sh for this build: every file of the build and its size in bytes."
  echo "const BUILD = {\"version\":\"$version\",\"bytes\":$total,\"files\":[$entries]};"
  echo
  cat "$code"
} > sw.js
echo "precache.sh: sw.js lists $(printf '%s\n' "$list" | wc -l) files, $total bytes, version $version"
