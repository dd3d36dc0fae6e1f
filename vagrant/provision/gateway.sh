#!/usr/bin/env bash
# A gateway of the fleet (gw1, gw2): wggw installed from the checkout into a venv, the store's
# settings written, and `wggw agent --gateway <this host>` run as a service: it builds and keeps
# what the store places on this gateway (its interface, tenants, rules, nft table, egress
# addresses), follows the operator's changes (LISTEN/NOTIFY) and reports back. Nothing is
# configured here by hand: the operator's CLI on the db host writes the store. Runs on every boot
# (`run: "always"`): a restarted container comes back without its WireGuard interface, rules and
# nft table, and the agent's first converge builds them again from the store. Beside the agent,
# keepalived (high availability): it holds the HA interface's floating endpoint and egress
# addresses on whichever gateway is active, on the configuration the agent renders.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need python3:python3 nft:nftables wg:wireguard-tools curl:curl keepalived:keepalived
lab_links
case $LAB_HOST in
  gw1) add6 lab-wan "$GW1_UPLINK6/64" ;;
  gw2) add6 lab-wan "$GW2_UPLINK6/64" ;;
  *) log "not a gateway of the lab: $LAB_HOST"; exit 1 ;;
esac
install_wggw

# Joining the fleet needs the store's key file and the database password, which only the db host
# has: `vagrant/lab up` hands them over through ssh pipes (never a file on the lab's host) and
# runs this script again.
if [ ! -s /etc/wggw/store.key ] || [ ! -s /etc/wggw/pgpass ] || [ ! -s /etc/wggw/db-ca.crt ]; then
  log "not joined to the fleet yet: vagrant/lab up hands over the store's key and password"
  exit 0
fi
write_wggw_env "$LAB_HOST"
# After a restart of every host the database may come up after this gateway: bounded wait.
wait_for "the store on $DB_CTL" 90 wggw gateway show "$LAB_HOST"

# The agent, as a service. With systemd (box providers) the shipped unit, with --gateway in a
# drop-in; the docker provider's containers have no init system (sshd is their command), so
# provision/supervise does the unit's part there: restart on failure, log to
# /var/log/wggw-agent.log, the same command line.
agent=(/usr/local/bin/wggw --state-dir /var/lib/wggw agent --gateway "$LAB_HOST"
       --metrics-listen 127.0.0.1:9586)
if [ -d /run/systemd/system ]; then
  install -m 0644 "$lab_dir/../templates/wggw-agent.service" /etc/systemd/system/wggw-agent.service
  install -d /etc/systemd/system/wggw-agent.service.d
  printf '[Service]\nExecStart=\nExecStart=%s\n' "${agent[*]}" \
    >/etc/systemd/system/wggw-agent.service.d/gateway.conf
  systemctl daemon-reload
  systemctl enable -q wggw-agent
  systemctl restart wggw-agent      # this checkout's wggw (a restart leaves the data plane alone)
else
  pidfile=/run/wggw-lab-agent.pid
  if [ -z "$(running_pid "$pidfile" supervise)" ]; then
    log "starting ${agent[*]:1} (supervised; log: /var/log/wggw-agent.log)"
    WGGW_RUN_DIR=/run/wggw setsid "$lab_dir/provision/supervise" /var/log/wggw-agent.log \
      "${agent[@]}" </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
  fi
fi
# Ready: the control socket appears once the agent's first converge is done.
wait_for "the wggw agent" 60 test -S /run/wggw/agent.sock

# keepalived beside the agent (not under it), on /run/wggw/keepalived.conf, which the agent
# writes after its first converge and reloads (SIGHUP) on change: the shipped unit with systemd
# (Debian's own keepalived.service reads another file: kept off); under provision/supervise on
# the docker provider, with the unit's command line (and no syslog: none runs there).
wait_for "the agent's keepalived.conf" 30 test -s /run/wggw/keepalived.conf
if [ -d /run/systemd/system ]; then
  systemctl disable -q --now keepalived 2>/dev/null || true
  install -m 0644 "$lab_dir/../templates/wggw-keepalived.service" /etc/systemd/system/
  systemctl daemon-reload
  systemctl enable -q --now wggw-keepalived
else
  pidfile=/run/wggw-lab-keepalived.pid
  if [ -z "$(running_pid "$pidfile" supervise)" ]; then
    log "starting keepalived (supervised; log: /var/log/wggw-keepalived.log)"
    setsid "$lab_dir/provision/supervise" /var/log/wggw-keepalived.log \
      /usr/sbin/keepalived --dont-fork --vrrp --log-console --log-detail --no-syslog \
      --use-file /run/wggw/keepalived.conf --pid /run/wggw/keepalived.pid \
      --vrrp_pid /run/wggw/keepalived-vrrp.pid </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
  fi
fi
wait_for "keepalived" 30 test -s /run/wggw/keepalived-vrrp.pid
log "ready"
