#!/usr/bin/env bash
# Fetches cpp-httplib (header-only) as a Debian *source* package from unstable into .deps/cpp-httplib.
# Why: Debian 12 ships cpp-httplib 0.11.4, which lacks the request limits the server relies on
# (payload cap for chunked / no-length bodies, header count and line limits, a queued-request cap;
# CVE-2025-46728, CVE-2025-53628, CVE-2025-53629, CVE-2026-22776, CVE-2026-28434, CVE-2026-45352,
# CVE-2026-45372). Unstable carries a current release. apt runs with a private sources list and a
# private lists/cache dir so the system's apt state is untouched.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${VLM_DEPS_DIR:-$root/.deps}/cpp-httplib"
# The server needs at least this version (server/CMakeLists.txt refuses older ones).
min_version="0.41.0"

# Silent when the header is already there (scripts/run.sh runs this on every call).
[[ -f "$dest/httplib.h" && "${1:-}" != "--force" ]] && exit 0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt drops to the _apt user for downloads
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/src"
# The same Debian archive mirror the system's apt already uses (VLM_DEBIAN_MIRROR overrides it).
mirror="${VLM_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v -- '-security' | head -n1)}"
[[ -n "$mirror" ]] || { echo "fetch_cpp_httplib.sh: no Debian archive mirror configured for apt; set VLM_DEBIAN_MIRROR" >&2; exit 1; }
cat > "$work/sources.list" <<SRC
deb-src ${mirror%/} sid main
SRC

apt_opts=(
  -o "Dir::Etc::sourcelist=$work/sources.list"
  -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::Cache::archives=$work/archives"
  -o "APT::Get::List-Cleanup=0"
)
apt-get "${apt_opts[@]}" -qq update
(cd "$work/src" && apt-get "${apt_opts[@]}" -qq source --download-only cpp-httplib)
dsc="$(ls "$work"/src/cpp-httplib_*.dsc | head -n1)"
(cd "$work/src" && dpkg-source --no-check -x "$(basename "$dsc")" unpacked >/dev/null)

header="$work/src/unpacked/httplib.h"
version="$(grep -m1 -oP 'CPPHTTPLIB_VERSION "\K[^"]+' "$header")"
if ! dpkg --compare-versions "$version" ge "$min_version"; then
  echo "cpp-httplib $version from unstable is older than $min_version" >&2
  exit 1
fi
rm -rf "$dest"
mkdir -p "$dest"
cp "$header" "$dest/httplib.h"
cp "$work/src/unpacked/LICENSE" "$dest/LICENSE" 2>/dev/null || true
cp "$work/src/unpacked/debian/changelog" "$dest/debian.changelog" 2>/dev/null || true
echo "$(basename "$dsc")" > "$dest/SOURCE"
echo "cpp-httplib $version -> $dest"
