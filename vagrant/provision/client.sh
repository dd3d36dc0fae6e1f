#!/usr/bin/env bash
# A tenant's WireGuard client. Its config comes from the operator (`wggw peer config` on the db
# host), delivered by vagrant/lab to /etc/wggw-lab/wg-lab.conf; this script (re)connects with
# it: kernel WireGuard where the module exists, else wireguard-go; `wg setconf` on the
# `wg-quick strip`ped config; the config's addresses; a full tunnel (default routes into the
# tunnel) with the gateway's endpoint kept on the underlay. Run again after a new config is
# delivered: it reconnects.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need wg:wireguard-tools ip:iproute2 curl:curl ping:iputils-ping
lab_links

conf="/etc/wggw-lab/$WG_IFACE.conf"
pidfile=/run/wggw-lab-wireguard-go.pid
if [ ! -f "$conf" ]; then
  log "no WireGuard config yet: vagrant/lab up delivers it from the operator (db host)"
  exit 0
fi
setting() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//Ip" "$conf" | tr ',' ' '; }

# Tear down the previous connection, if any.
ip link del "$WG_IFACE" 2>/dev/null || true
pid=$(running_pid "$pidfile" wireguard-go)
if [ -n "$pid" ]; then
  kill "$pid" 2>/dev/null || true
  wait_for "wireguard-go (pid $pid) to stop" 5 bash -c "! kill -0 $pid"
fi
rm -f "$pidfile" "/var/run/wireguard/$WG_IFACE.sock"

if ip link add "$WG_IFACE" type wireguard 2>/dev/null; then
  log "kernel WireGuard"
else
  need wireguard-go:wireguard-go
  log "userspace WireGuard (wireguard-go)"
  WG_PROCESS_FOREGROUND=1 setsid wireguard-go "$WG_IFACE" </dev/null >>/var/log/wggw-lab-wireguard-go.log 2>&1 &
  echo $! >"$pidfile"
  wait_for "the $WG_IFACE UAPI socket" 10 test -S "/var/run/wireguard/$WG_IFACE.sock"
fi

wg setconf "$WG_IFACE" <(wg-quick strip "$conf")
for addr in $(setting Address); do ip addr add "$addr" dev "$WG_IFACE"; done
ip link set dev "$WG_IFACE" mtu "$(setting MTU | grep . || echo 1420)" up

endpoint=$(setting Endpoint)
endpoint_host=${endpoint%:*}
endpoint_host=${endpoint_host#[}; endpoint_host=${endpoint_host%]}
ip route replace "$endpoint_host" dev lab-access
ip -4 route replace default dev "$WG_IFACE"
ip -6 route replace default dev "$WG_IFACE"
log "connected to $endpoint as $(wg show "$WG_IFACE" public-key) with $(setting Address)"
