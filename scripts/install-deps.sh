#!/bin/sh
# Installs what building and testing veer needs on Debian 12 (as root), or prints the one
# command to run when not root. Safe to run again: it only installs what is missing.
set -eu

PKGS="build-essential cmake ninja-build pkg-config
libuv1-dev libmbedtls-dev rapidjson-dev libc-ares-dev libmaxminddb-dev libre2-dev zlib1g-dev
libgtest-dev libgmock-dev libbenchmark-dev
python3 curl openssl dnsmasq-base iproute2 nftables iptables microsocks dante-server tinyproxy
shadowsocks-libev trojan stunnel4"

# Extra tools for CI (fuzzing with clang/libFuzzer, sanitizers).
if [ "${VEER_DEPS_CI:-0}" = "1" ]; then
  PKGS="$PKGS clang libclang-rt-14-dev"
fi

# The OpenWrt package checks use shellcheck (tests/integration/openwrt; skipped without it).
# The cross toolchains and multiarch -dev packages are installed by scripts/cross-test.sh.
if [ "${VEER_DEPS_CI:-0}" = "1" ] || [ "${VEER_DEPS_CROSS:-0}" = "1" ]; then
  PKGS="$PKGS shellcheck"
fi

missing=""
for p in $PKGS; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -z "$missing" ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "veer needs these Debian packages:$missing" >&2
  echo "run: sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi

echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
