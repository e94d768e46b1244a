#!/bin/sh
# Writes the OpenWrt package's source tarball, veer-VERSION.tar.gz (PKG_SOURCE in
# openwrt/veer/Makefile; VERSION is its PKG_VERSION), from this git checkout: `git archive` of
# REV (default HEAD) with every path under veer-VERSION/, compressed without a timestamp so the
# same commit always gives the same bytes. Prints the sha256 (PKG_HASH for a release).
#
#   openwrt/make-source-tarball.sh [REV] [OUTDIR]
#   cp veer-0.1.0.tar.gz /path/to/openwrt/dl/    # then: make package/veer/compile V=s
set -eu

top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
rev=${1:-HEAD}
out=${2:-.}
version=$(sed -n 's/^PKG_VERSION:=//p' "$top/openwrt/veer/Makefile")
cmake_version=$(git -C "$top" show "$rev:CMakeLists.txt" | sed -n 's/^project(veer VERSION \([^ ]*\).*/\1/p')
if [ "$version" != "$cmake_version" ]; then
	echo "make-source-tarball: PKG_VERSION $version differs from CMakeLists.txt's $cmake_version" >&2
	exit 1
fi
name=veer-$version
git -C "$top" archive --format=tar --prefix="$name/" "$rev" | gzip -n -9 >"$out/$name.tar.gz"
sha256sum "$out/$name.tar.gz"
