#!/bin/sh
# Policy routing for veer's TPROXY rules (veer.nft), IPv4 and IPv6.
#
#   veer-route.sh start   add the routes (and load veer.nft unless NFT_FILE is empty)
#   veer-route.sh stop    remove them (and the nft table)
#
# TPROXY only marks a packet and names the socket; the routing decision must still deliver a
# packet addressed to a foreign IP locally. Packets with the TPROXY mark are looked up in table
# 100, whose only route says "every address is local":
#
#   ip rule add fwmark 0x1 lookup 100
#   ip route add local 0.0.0.0/0 dev lo table 100        (and the same with ip -6, ::/0)
#
# On OpenWrt, call it from the init script of veer (procd start_service / stop_service), or
# put the fw4 include in place (see veer.nft) and call it with NFT_FILE= to add routes only.
# Environment: TPROXY_MARK (0x1), TPROXY_TABLE (100), NFT_FILE (veer.nft beside this script).
set -u

TPROXY_MARK=${TPROXY_MARK:-0x1}
TPROXY_TABLE=${TPROXY_TABLE:-100}
NFT_FILE=${NFT_FILE-$(dirname "$0")/veer.nft}

start() {
	for v in -4 -6; do
		ip "$v" rule del fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" 2>/dev/null
		ip "$v" rule add fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" || return 1
	done
	ip -4 route replace local 0.0.0.0/0 dev lo table "$TPROXY_TABLE" || return 1
	ip -6 route replace local ::/0 dev lo table "$TPROXY_TABLE" || return 1
	if [ -n "$NFT_FILE" ]; then
		nft -f "$NFT_FILE" || return 1
	fi
}

stop() {
	if [ -n "$NFT_FILE" ]; then
		nft delete table inet veer 2>/dev/null
	fi
	for v in -4 -6; do
		ip "$v" rule del fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" 2>/dev/null
		ip "$v" route flush table "$TPROXY_TABLE" 2>/dev/null
	done
	return 0
}

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
