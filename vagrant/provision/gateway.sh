#!/usr/bin/env bash
# The gateway: wggw installed from the checkout into a venv, then configured only through the
# wggw CLI (init, interface, tenants, peers, apply). Every step is idempotent, so this runs on
# every boot (`run: "always"`): a restarted container comes back without its WireGuard interface,
# rules and nft table, and `wggw apply` builds them again from the store. Then `wggw agent` runs
# as a service and keeps it so.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need python3:python3 nft:nftables wg:wireguard-tools curl:curl
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
lab_links
add6 lab-wan "$GW_UPLINK6/64"

# wggw from the checkout. `vagrant/lab up` builds its wheel and its dependencies' on the host into
# vagrant/.lab/wheels: the lab's containers have no way out to PyPI, by design. A VM with internet
# whose Python differs from the host's gets the missing dependencies from PyPI instead.
venv=/opt/wggw
wheels="$lab_dir/.lab/wheels"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check --find-links "$wheels")
"${pip[@]}" --no-index wggw 2>/dev/null || "${pip[@]}" wggw
"${pip[@]}" --no-index --force-reinstall --no-deps wggw     # this checkout's, even if the version is unchanged
ln -sf "$venv/bin/wggw" /usr/local/bin/wggw

# The lab's tenants, by the CLI alone. Tenant X's client is the host tenant-X, peer "client".
wggw init >/dev/null
wggw interface show "$WG_IFACE" >/dev/null 2>&1 ||
  wggw interface add "$WG_IFACE" --listen-port "$WG_PORT" --endpoint "$GW_ACCESS:$WG_PORT"
add_tenant() {  # add_tenant NAME POOL POOL6 EGRESS EGRESS6
  wggw tenant show "$1" >/dev/null 2>&1 ||
    wggw tenant add "$1" --pool "$2" --pool "$3" --egress "$4" --egress "$5" \
      --interface "$WG_IFACE" --uplink lab-wan --via "$INET" --via "$INET6"
  wggw peer show "$1/client" >/dev/null 2>&1 || wggw peer add "$1/client" --keepalive 25
}
add_tenant tenant-a "$POOL_A" "$POOL_A6" "$EGRESS_A" "$EGRESS_A6"
add_tenant tenant-b "$POOL_B" "$POOL_B6" "$EGRESS_B" "$EGRESS_B6"
wggw apply

# The agent, as a service: it keeps the gateway converged from here on (check: a fault healed
# with no command typed). With systemd (box providers) the shipped unit; the docker provider's
# containers have no init system (sshd is their command), so provision/supervise does the unit's
# part there: restart on failure, log to /var/log/wggw-agent.log, the same command line.
if [ -d /run/systemd/system ]; then
  install -m 0644 "$lab_dir/../templates/wggw-agent.service" /etc/systemd/system/wggw-agent.service
  systemctl daemon-reload
  systemctl enable -q wggw-agent
  systemctl restart wggw-agent      # this checkout's wggw (a restart leaves the data plane alone)
else
  pidfile=/run/wggw-lab-agent.pid
  if [ -z "$(running_pid "$pidfile" supervise)" ]; then
    log "starting wggw agent (supervised; log: /var/log/wggw-agent.log)"
    WGGW_RUN_DIR=/run/wggw setsid "$lab_dir/provision/supervise" /var/log/wggw-agent.log \
      /usr/local/bin/wggw --state-dir /var/lib/wggw agent --metrics-listen 127.0.0.1:9586 \
      </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
  fi
fi
# Ready: the control socket appears once the agent's first converge is done.
wait_for "the wggw agent" 60 test -S /run/wggw/agent.sock

# Unattended rotation, as shipped. No cron daemon runs in the lab: `vagrant/lab check` runs this
# job's command line itself (provision/run-cron-job), with the lab's short policy appended.
install -m 0644 "$lab_dir/../templates/wggw-rotate.cron" /etc/cron.d/wggw-rotate
log "ready"
