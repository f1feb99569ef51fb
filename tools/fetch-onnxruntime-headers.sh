#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ API headers from Debian trixie's libonnxruntime-dev without touching the
# system's apt configuration: a private sources.list, lists and cache, then dpkg-deb -x. The .deb is pinned
# by sha256. The headers (API version 21) work against the newer library of the onnxruntime wheel, which the
# core loads with dlopen() at run time.
#   usage: tools/fetch-onnxruntime-headers.sh DEST_INCLUDE_DIR
set -euo pipefail
dest=${1:?usage: $0 DEST_INCLUDE_DIR}
package=libonnxruntime-dev
version=1.21.0+dfsg-1
sha256=14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08
deb_name="${package}_${version}_amd64.deb"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root"
          -o "Debug::NoLocking=1")
apt-get "${apt_opts[@]}" -qq update
(cd "$work" && apt-get "${apt_opts[@]}" -qq download "${package}=${version}")
echo "${sha256}  ${work}/${deb_name}" | sha256sum --check --quiet
dpkg-deb -x "$work/$deb_name" "$work/root"
tmp_dest="${dest}.tmp.$$"
rm -rf "$tmp_dest"
mkdir -p "$tmp_dest"
cp "$work"/root/usr/include/onnxruntime/*.h "$tmp_dest/"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp_dest" "$dest"
echo "ONNX Runtime headers ${version} in ${dest}"
