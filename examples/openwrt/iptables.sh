#!/bin/sh
# The iptables equivalent of veer.nft + veer-route.sh, for firewalls without nftables (fw3,
# older OpenWrt, plain Linux). Works with iptables-nft and iptables-legacy.
#
#   iptables.sh start | stop
#
# Environment (defaults in brackets):
#   LAN_IF        interface the clients are on [br-lan]
#   VEER_PORT     veer's tproxy inbound port [7893]
#   VEER_MARK     veer's outbound routing_mark [0xff] (veer.json: "routing_mark": 255)
#   TPROXY_MARK   mark for TPROXY'd packets [0x1]; TPROXY_TABLE [100]
#   BYPASS4 / BYPASS6  destinations never proxied [private, local and reserved ranges]
#   OWN_TRAFFIC   1 to proxy the router's own traffic too (mangle OUTPUT) [1]
#   IPT / IP6T    the iptables commands [iptables / ip6tables]
set -u

LAN_IF=${LAN_IF:-br-lan}
VEER_PORT=${VEER_PORT:-7893}
VEER_MARK=${VEER_MARK:-0xff}
TPROXY_MARK=${TPROXY_MARK:-0x1}
TPROXY_TABLE=${TPROXY_TABLE:-100}
OWN_TRAFFIC=${OWN_TRAFFIC:-1}
IPT=${IPT:-iptables}
IP6T=${IP6T:-ip6tables}
BYPASS4=${BYPASS4:-"0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12 192.0.0.0/24 192.168.0.0/16 198.18.0.0/15 224.0.0.0/4 240.0.0.0/4"}
BYPASS6=${BYPASS6:-"::/128 ::1/128 ::ffff:0:0/96 64:ff9b::/96 fc00::/7 fe80::/10 ff00::/8"}

# rules IPT BYPASS: the chains of one address family.
rules() {
	ipt=$1
	bypass=$2
	$ipt -w -t mangle -N VEER || return 1
	# veer's own traffic (seen here when routed back through lo): never captured again.
	$ipt -w -t mangle -A VEER -m mark --mark "$VEER_MARK" -j RETURN
	# Packets of connections veer already holds go straight to its socket (optional).
	$ipt -w -t mangle -A VEER -p tcp -m socket --transparent -j MARK --set-mark "$TPROXY_MARK"
	$ipt -w -t mangle -A VEER -p tcp -m socket --transparent -j RETURN
	# DNS from the LAN, to any server: answered by veer (hijack-dns).
	for p in tcp udp; do
		$ipt -w -t mangle -A VEER -i "$LAN_IF" -p $p --dport 53 -j TPROXY \
			--on-port "$VEER_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
	done
	$ipt -w -t mangle -A VEER -m addrtype --dst-type LOCAL -j RETURN
	for net in $bypass; do
		$ipt -w -t mangle -A VEER -d "$net" -j RETURN
	done
	for p in tcp udp; do
		$ipt -w -t mangle -A VEER -i "$LAN_IF" -p $p -j TPROXY \
			--on-port "$VEER_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
		# The router's own traffic, marked in OUTPUT, re-enters through lo.
		$ipt -w -t mangle -A VEER -i lo -p $p -m mark --mark "$TPROXY_MARK" -j TPROXY \
			--on-port "$VEER_PORT" --tproxy-mark "$TPROXY_MARK/$TPROXY_MARK"
	done
	$ipt -w -t mangle -A PREROUTING -j VEER

	[ "$OWN_TRAFFIC" = 1 ] || return 0
	$ipt -w -t mangle -N VEER_OUT || return 1
	# veer's outbound sockets carry VEER_MARK: without this rule they loop back into veer.
	$ipt -w -t mangle -A VEER_OUT -m mark --mark "$VEER_MARK" -j RETURN
	# Answers to LAN clients, also from veer's transparent sockets.
	$ipt -w -t mangle -A VEER_OUT -o "$LAN_IF" -j RETURN
	$ipt -w -t mangle -A VEER_OUT -m addrtype --dst-type LOCAL -j RETURN
	for net in $bypass; do
		$ipt -w -t mangle -A VEER_OUT -d "$net" -j RETURN
	done
	for p in tcp udp; do
		# The router's resolver queries its upstreams itself.
		$ipt -w -t mangle -A VEER_OUT -p $p --dport 53 -j RETURN
		$ipt -w -t mangle -A VEER_OUT -p $p -j MARK --set-mark "$TPROXY_MARK"
	done
	$ipt -w -t mangle -A OUTPUT -j VEER_OUT
}

unrules() {
	ipt=$1
	$ipt -w -t mangle -D PREROUTING -j VEER 2>/dev/null
	$ipt -w -t mangle -D OUTPUT -j VEER_OUT 2>/dev/null
	for c in VEER VEER_OUT; do
		$ipt -w -t mangle -F $c 2>/dev/null
		$ipt -w -t mangle -X $c 2>/dev/null
	done
	return 0
}

start() {
	stop
	rules "$IPT" "$BYPASS4" || return 1
	rules "$IP6T" "$BYPASS6" || return 1
	# TPROXY'd packets (foreign destination) must be delivered locally.
	ip -4 rule add fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" || return 1
	ip -6 rule add fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" || return 1
	ip -4 route replace local 0.0.0.0/0 dev lo table "$TPROXY_TABLE" || return 1
	ip -6 route replace local ::/0 dev lo table "$TPROXY_TABLE" || return 1
}

stop() {
	unrules "$IPT"
	unrules "$IP6T"
	for v in -4 -6; do
		ip "$v" rule del fwmark "$TPROXY_MARK" lookup "$TPROXY_TABLE" 2>/dev/null
		ip "$v" route flush table "$TPROXY_TABLE" 2>/dev/null
	done
	return 0
}

# For the redirect inbound instead (TCP only, IPv4/IPv6 NAT), the rule would be:
#   iptables -t nat -A PREROUTING -i br-lan -p tcp -m addrtype ! --dst-type LOCAL \
#            -j REDIRECT --to-ports 7892

case "${1:-}" in
	start) start ;;
	stop) stop ;;
	*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
