#!/usr/bin/env bash
# Fetches cpp-httplib (header-only) into .deps/cpp-httplib: one pinned release, taken from the Debian
# source package's upstream tarball and checked against its SHA-256 before anything is unpacked.
# Why not Debian 12's package: it ships cpp-httplib 0.11.4, which lacks the request limits the server
# relies on (payload cap for chunked / no-length bodies, header count and line limits, a queued-request
# cap; CVE-2025-46728, CVE-2025-53628, CVE-2025-53629, CVE-2026-22776, CVE-2026-28434, CVE-2026-45352,
# CVE-2026-45372). Why pinned: the build must not change with whatever Debian unstable carries today.
# Debian's packaging applies no patches to httplib.h for this version, so the upstream tarball's header
# is the packaged one.
#   scripts/fetch_cpp_httplib.sh [--force]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${VLM_DEPS_DIR:-$root/.deps}/cpp-httplib"
version="0.41.0"
tarball="cpp-httplib_${version}+ds.orig.tar.xz"
sha256="7acb492bffdd95165677d22145c2c4890e6432c5ef53d0f781defe8dec48f567"
# The server needs at least this version (server/CMakeLists.txt refuses older ones).
min_version="0.41.0"
fail() { echo "fetch_cpp_httplib.sh: $*" >&2; exit 1; }

# Silent when the pinned header is already there (scripts/run.sh runs this on every call).
[[ -f "$dest/httplib.h" && "$(cat "$dest/SOURCE" 2>/dev/null)" == "$tarball $sha256" && "${1:-}" != "--force" ]] && exit 0

dpkg --compare-versions "$version" ge "$min_version" || fail "pinned cpp-httplib $version is older than $min_version"
# The Debian archive mirror the system's apt already uses (VLM_DEBIAN_MIRROR overrides it); the pool
# keeps a source package's files while any suite carries that version.
mirror="${VLM_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v -- '-security' | head -n1)}"
[[ -n "$mirror" ]] || fail "no Debian archive mirror configured for apt; set VLM_DEBIAN_MIRROR"
url="${mirror%/}/pool/main/c/cpp-httplib/$tarball"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# apt downloads as its unprivileged _apt user, which must be able to write there.
if [[ $(id -u) == 0 ]]; then chown _apt "$work"; fi
# apt's own downloader verifies the checksum and removes the file on a mismatch.
/usr/lib/apt/apt-helper -qq download-file "$url" "$work/$tarball" "SHA256:$sha256" >/dev/null \
  || fail "cannot fetch $url with SHA-256 $sha256 (is the Debian archive reachable, and does its pool still hold cpp-httplib $version?)"
tar -xJf "$work/$tarball" -C "$work"
header="$work/cpp-httplib-${version}+ds/httplib.h"
[[ -f "$header" ]] || fail "$tarball holds no httplib.h"
found="$(grep -m1 -oP 'CPPHTTPLIB_VERSION "\K[^"]+' "$header")"
[[ "$found" == "$version" ]] || fail "$tarball holds cpp-httplib $found, expected $version"
rm -rf "$dest"
mkdir -p "$dest"
cp "$header" "$dest/httplib.h"
cp "$work/cpp-httplib-${version}+ds/LICENSE" "$dest/LICENSE"
echo "$tarball $sha256" > "$dest/SOURCE"
echo "cpp-httplib $version -> $dest"
