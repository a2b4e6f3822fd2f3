#!/usr/bin/env bash
# Makes the Debian 12 base image docker/Dockerfile builds on, without an image registry: a minimal
# bookworm root filesystem from debootstrap (the Debian archive mirror apt already uses), trimmed as
# debian:12-slim is (no documentation, manual pages or translations, no apt lists), committed into
# buildah's local storage. CI builds the images from it; elsewhere the registry's debian:12-slim does.
#   scripts/debian_base.sh [TAG]          default TAG: localhost/debian:12-slim
# The root filesystem is cached as a tarball under ~/.cache/vlmserve/debian-base, keyed by this
# script, the mirror and the local CAs, so later runs only import it (seconds), or do nothing when the image is there.
# Needs root (debootstrap, buildah).
set -euo pipefail

tag="${1:-localhost/debian:12-slim}"
fail() { echo "debian_base.sh: $*" >&2; exit 1; }
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/setup.sh installs it)"
done
[[ $(id -u) == 0 ]] || fail "debootstrap and buildah need root"

mirror="${VLM_DEBIAN_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -v -- '-security' | head -n1)}"
security="${VLM_DEBIAN_SECURITY_MIRROR:-$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -- '-security' | head -n1)}"
[[ -n "$mirror" && -n "$security" ]] || fail "no Debian archive mirror configured for apt; set VLM_DEBIAN_MIRROR and VLM_DEBIAN_SECURITY_MIRROR"
# The machine's own added CAs (a TLS-inspecting proxy's, say) go into the base, so that builds from it
# reach the package indexes as this machine does; the ca-certificates package adds them to its bundle.
local_cas=(/usr/local/share/ca-certificates/*.crt)
[[ -e "${local_cas[0]}" ]] || local_cas=()
key="$( (cat "${BASH_SOURCE[0]}" "${local_cas[@]}"; echo "$mirror $security") | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/vlmserve/debian-base"
tarball="$cache/bookworm-$key.tar"

if [[ "$(buildah inspect --type image --format '{{index .ImageAnnotations "org.vlmserve.base-key"}}' "$tag" 2>/dev/null)" == "$key" ]]; then
  exit 0
fi

if [[ ! -f "$tarball" ]]; then
  mkdir -p "$cache"
  rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs" "$tarball.partial"' EXIT
  echo "debian_base.sh: debootstrap bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; fail "debootstrap failed"; }
  rm -f "$rootfs.log"
  # As debian:12-slim: dpkg leaves documentation and translations out of every later install too.
  cat > "$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  if [[ ${#local_cas[@]} -gt 0 ]]; then cp "${local_cas[@]}" "$rootfs/usr/local/share/ca-certificates/"; fi
  rm -f "$rootfs/etc/apt/sources.list"
  cat > "$rootfs/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: ${mirror}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  find "$cache" -maxdepth 1 -name 'bookworm-*.tar' ! -name "$(basename "$tarball")" -delete
  rm -rf "$rootfs"
  trap - EXIT
fi

container="$(buildah from scratch)"
trap 'buildah rm "$container" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$container" "$tarball" / >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash \
  --annotation "org.vlmserve.base-key=$key" "$container"
buildah commit --quiet --rm "$container" "$tag" >/dev/null
trap - EXIT
echo "debian_base.sh: $tag from $(basename "$tarball") ($(du -h "$tarball" | cut -f1))"
