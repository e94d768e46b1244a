#!/bin/sh
# Cross-builds veer for another architecture with Debian's cross toolchains and runs the unit
# tests and the fuzz-corpus replays under qemu-user, then checks the binary for glibc-only
# symbols (scripts/check-musl-symbols.sh).
#
#   scripts/cross-test.sh ARCH...     ARCH: aarch64, mipsel (32-bit) or s390x (big-endian)
#   scripts/cross-test.sh deps ARCH...   only install the cross toolchains and -dev packages
#
# Build directory: build-cross-ARCH. Environment: JOBS (2), CROSS_OPT (-O1: the tests run the
# same code paths, and the build is what takes the time; -O2 for a release-like build).
# Tests run through CMAKE_CROSSCOMPILING_EMULATOR (qemu-ARCH, see cmake/toolchains/); the
# integration tests (Python, network namespaces, socket options qemu does not emulate such as
# IP_TRANSPARENT, SO_MARK, SO_ORIGINAL_DST) are not registered in cross builds and run natively.
set -eu
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
CROSS_OPT=${CROSS_OPT:--O1}

debarch() {
	case $1 in
		aarch64) echo arm64 ;;
		mipsel) echo mipsel ;;
		s390x) echo s390x ;;
		*) echo "cross-test: unknown arch $1 (aarch64, mipsel, s390x)" >&2; exit 2 ;;
	esac
}

triplet() {
	case $1 in
		aarch64) echo aarch64-linux-gnu ;;
		mipsel) echo mipsel-linux-gnu ;;
		s390x) echo s390x-linux-gnu ;;
	esac
}

# Installs crossbuild-essential-DEBARCH, qemu-user and the multiarch -dev packages. Multi-Arch:
# same packages must have one version across architectures; Debian's security archive carries
# newer linux-libc-dev, libssl3 and zlib1g for amd64/arm64 than the main archive has for
# mipsel/s390x, so those (and zlib1g-dev) are pinned to the version every architecture has
# (headers and patch-level OpenSSL and zlib steps; nothing is removed).
deps() {
	pkgs="qemu-user"
	arches=""
	for a in "$@"; do
		d=$(debarch "$a")
		arches="$arches $d"
		pkgs="$pkgs crossbuild-essential-$d"
		for p in libuv1-dev libmbedtls-dev libc-ares-dev libmaxminddb-dev libre2-dev zlib1g-dev libgtest-dev; do
			pkgs="$pkgs $p:$d"
		done
	done
	missing=""
	for p in $pkgs; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
			missing="$missing $p"
		fi
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "cross-test: missing:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "cross-test: installing:$missing" >&2
	for d in $arches; do
		dpkg --add-architecture "$d"
	done
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	pins=""
	for p in linux-libc-dev libssl3 zlib1g; do
		v=""
		for d in $arches; do
			# the oldest candidate wins: it is the one every architecture has
			c=$(apt-cache policy "$p:$d" | awk '/Candidate:/ {print $2}')
			if [ -z "$v" ] || dpkg --compare-versions "$c" lt "$v"; then v=$c; fi
		done
		pins="$pins $p:amd64=$v"
		for d in $arches; do pins="$pins $p:$d=$v"; done
		if [ "$p" = libssl3 ]; then
			for q in libssl-dev openssl; do
				if dpkg-query -W -f='${Status}' "$q" 2>/dev/null | grep -q "install ok installed"; then
					pins="$pins $q=$v"
				fi
			done
		fi
		if [ "$p" = zlib1g ]; then
			# zlib1g-dev is Multi-Arch: same too, and pinned to its library's exact version
			pins="$pins zlib1g-dev:amd64=$v"
			for d in $arches; do pins="$pins zlib1g-dev:$d=$v"; done
		fi
	done
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends --allow-downgrades $missing $pins >/dev/null
}

run_arch() {
	a=$1
	b=build-cross-$a
	start=$(date +%s)
	echo "=== cross-test $a: configure ($CROSS_OPT)"
	cmake -S . -B "$b" -G Ninja -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$a.cmake" \
		-DCMAKE_BUILD_TYPE=Release -DVEER_INTEGRATION_TESTS=OFF \
		-DCMAKE_C_FLAGS_RELEASE="$CROSS_OPT -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="$CROSS_OPT -DNDEBUG" >/dev/null
	echo "=== cross-test $a: build"
	cmake --build "$b" -j "$JOBS"
	echo "=== cross-test $a: unit tests and corpus replays under qemu-$a"
	(cd "$b" && ctest -L 'unit|fuzz' --output-on-failure -j "$JOBS" --timeout 900)
	echo "=== cross-test $a: musl symbol check"
	"$(triplet "$a")-strip" -o "$b/veer.stripped" "$b/veer"
	sh scripts/check-musl-symbols.sh "$b/veer.stripped" "$(triplet "$a")-nm"
	echo "=== cross-test $a: ok in $(( $(date +%s) - start )) s"
}

if [ "${1:-}" = deps ]; then
	shift
	deps "$@"
	exit 0
fi
[ $# -gt 0 ] || { echo "usage: $0 [deps] ARCH... (aarch64 mipsel s390x)" >&2; exit 2; }
for a in "$@"; do debarch "$a" >/dev/null; done
deps "$@"
for a in "$@"; do
	run_arch "$a"
done
