# shellcheck shell=bash
# The lab's assertions, with real traffic from the clients; sourced by `vagrant/lab check`, which
# provides on(), deliver_config(), say() and the address plan. Every assertion prints one line;
# a failure names the host and the assertion and shows the evidence: what the internet host saw
# (its answer and its request log), the client's WireGuard state, the gateway's peers.

checks_failed=0
pass() { printf '[check] ok    %-9s %s\n' "$1" "$2"; }
fail() {  # fail HOST ASSERTION EVIDENCE...
  printf '[check] FAIL  %-9s %s\n' "$1" "$2"
  shift 2
  printf '%s\n' "$@" | sed 's/^/                  | /'
  checks_failed=$(( checks_failed + 1 ))
}

# seen HOST FAMILY: what the internet host answers HOST's HTTP request with (the source address it
# saw), retried for up to 30 s while there is no answer (a fresh tunnel needs a handshake first;
# a client whose gateway restarted starts a new one on its own within about 15 s).
seen() {
  local deadline=$(( SECONDS + 30 )) got=""
  while [ -z "$got" ] && [ $SECONDS -lt $deadline ]; do
    got=$(on "$1" "curl -s -$2 --max-time 3 $(internet_url "$2")" </dev/null || true)
    [ -n "$got" ] || sleep 1
  done
  printf '%s' "$got"
}
internet_url() { if [ "$1" = 6 ]; then echo "http://[$INET6]/"; else echo "http://$INET/"; fi; }

evidence() {  # evidence HOST: what a failing traffic check shows besides the answer
  echo "the internet host's last requests (time, source, path):"
  on internet "tail -n 5 /var/log/wggw-lab-whoami.log 2>/dev/null || echo '(none)'" </dev/null
  echo "$1: wg show $WG_IFACE; ip route:"
  on "$1" "wg show $WG_IFACE; ip -4 route; ip -6 route" </dev/null 2>&1
  echo "gateway: wg show $WG_IFACE peers / latest handshakes:"
  on gateway "wg show $WG_IFACE latest-handshakes" </dev/null 2>&1
}

expect_egress() {  # expect_egress HOST FAMILY EXPECTED [LABEL]
  local got
  got=$(seen "$1" "$2")
  if [ "$got" = "$3" ]; then
    pass "$1" "${4:-}IPv$2: the internet host sees $got"
  else
    fail "$1" "${4:-}IPv$2: the internet host must see $3" \
      "the internet host saw: ${got:-nothing (no answer within 30 s)}" "$(evidence "$1")"
  fi
}

expect_no_egress() {  # expect_no_egress HOST FAMILY LABEL: no answer at all within 8 s
  local got
  got=$(on "$1" "curl -s -$2 --max-time 8 $(internet_url "$2")" </dev/null || true)
  if [ -z "$got" ]; then
    pass "$1" "$3: no answer from the internet host"
  else
    fail "$1" "$3: must get no answer" "the internet host saw: $got" "$(evidence "$1")"
  fi
}

peer_json() { on gateway "wggw peer show $1/client --json" </dev/null; }
json_field() { python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(" ".join(v) if isinstance(v, list) else v)' "$1"; }
gateway_peers() { on gateway "wg show $WG_IFACE peers" </dev/null; }

check_preconditions() {  # the internet host has no route to any peer address
  local addr out
  for addr in $(peer_json tenant-a | json_field addresses) $(peer_json tenant-b | json_field addresses); do
    addr=${addr%/*}
    if out=$(on internet "ip route get $addr" </dev/null 2>&1); then
      fail internet "has no route back to the tenant pools" "ip route get $addr: $out"
      return
    fi
  done
  pass internet "has no route back to any tenant pool (only SNATed traffic is answered)"
}

check_egress() {  # check_egress [LABEL]
  expect_egress tenant-a 4 "$EGRESS_A" "${1:-}"
  expect_egress tenant-a 6 "$EGRESS_A6" "${1:-}"
  expect_egress tenant-b 4 "$EGRESS_B" "${1:-}"
  expect_egress tenant-b 6 "$EGRESS_B6" "${1:-}"
}

check_isolation() {  # tenant-a cannot reach tenant-b's tunnel addresses; the gateway can (control)
  local addr
  for addr in $(peer_json tenant-b | json_field addresses); do
    addr=${addr%/*}
    if ! on gateway "ping -c 1 -W 2 $addr" </dev/null >/dev/null 2>&1; then
      fail gateway "control: reaches tenant-b at $addr" "$(on gateway "ping -c 1 -W 2 $addr" </dev/null 2>&1)"
    elif out=$(on tenant-a "ping -c 3 -W 1 -i 0.3 $addr" </dev/null 2>&1); then
      fail tenant-a "cannot reach tenant-b at $addr" "$out"
    else
      pass tenant-a "cannot reach tenant-b at $addr (the gateway can)"
    fi
  done
}

# Rotation, end to end: the installed cron job's command line with the lab's short policy; the
# old keys keep working during the grace period; the new configs go to the clients, which
# reconnect; once the grace is over, the next cron run retires the old keys, which then fail.
check_rotation() {
  local grace=30 host old_keys new_keys key t0 old_conf_a rc=0
  old_keys="$(peer_json tenant-a | json_field public_key) $(peer_json tenant-b | json_field public_key)"
  old_conf_a=$(on tenant-a "cat /etc/wggw-lab/$WG_IFACE.conf" </dev/null)
  t0=$SECONDS
  on gateway "/wggw/vagrant/provision/run-cron-job /etc/cron.d/wggw-rotate --older-than 0s --grace ${grace}s" </dev/null || rc=$?
  if [ $rc -ne 0 ]; then
    fail gateway "the cron job rotates (--older-than 0s --grace ${grace}s)" "exit $rc"
    return
  fi
  new_keys="$(peer_json tenant-a | json_field public_key) $(peer_json tenant-b | json_field public_key)"
  for key in $old_keys; do
    case " $new_keys " in *" $key "*) fail gateway "the cron job rotated the key $key" "it is still the peer's current key"; return ;; esac
  done
  pass gateway "the cron job rotated both peers' keys"
  expect_egress tenant-a 4 "$EGRESS_A" "grace period, old key: "
  local conf mode
  for host in tenant-a tenant-b; do
    conf=/var/lib/wggw/outbox/$host/client.conf   # the cron entry's --out, as its comment documents
    mode=$(on gateway "stat -c %a $conf" </dev/null 2>&1 || true)
    if [ "$mode" != 600 ]; then
      fail gateway "the cron job wrote $host's new config to $conf, mode 0600" "stat: $mode" \
        "$(on gateway "ls -lR /var/lib/wggw/outbox" </dev/null 2>&1)"
      return
    fi
    on gateway "cat $conf" </dev/null | deliver_config "$host" >/dev/null
  done
  pass gateway "delivered the new configs from the job's outbox (0600); the clients reconnected"
  check_egress "new key: "
  say "waiting out the ${grace} s grace period"
  sleep $(( grace + 2 - (SECONDS - t0) > 0 ? grace + 2 - (SECONDS - t0) : 0 ))
  on gateway "/wggw/vagrant/provision/run-cron-job /etc/cron.d/wggw-rotate" </dev/null || rc=$?
  [ $rc -eq 0 ] || fail gateway "the next cron run (as installed) succeeds" "exit $rc"
  local peers
  peers=$(gateway_peers)
  for key in $old_keys; do
    if grep -qxF "$key" <<<"$peers"; then
      fail gateway "retired the old key $key after the grace period" "peers on $WG_IFACE:" "$peers"
    else
      pass gateway "retired the old key $key after the grace period"
    fi
  done
  printf '%s\n' "$old_conf_a" | deliver_config tenant-a >/dev/null
  expect_no_egress tenant-a 4 "old config after retirement"
  on gateway "wggw peer config tenant-a/client" </dev/null | deliver_config tenant-a >/dev/null
  expect_egress tenant-a 4 "$EGRESS_A" "new config again: "
}

# Every host restarted (`vagrant reload`): provisioning runs again, the gateway rebuilds its kernel
# state from the store, the clients reconnect with the configs they hold, and all works again.
check_reload() {
  local rc=0
  say "restarting every host (vagrant reload)"
  vagrant reload >"$state/reload.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    fail all "vagrant reload succeeds" "exit $rc; the end of its output:" "$(tail -n 20 "$state/reload.log")"
    return
  fi
  ssh_config
  pass all "vagrant reload: every host restarted and provisioned again"
  check_egress "after reload: "
  check_isolation
}

run_checks() {
  check_preconditions
  check_egress
  check_isolation
  check_rotation
  check_reload
  if [ $checks_failed -gt 0 ]; then
    say "check: $checks_failed assertion(s) FAILED"
    return 1
  fi
  say "check: all assertions passed"
}
