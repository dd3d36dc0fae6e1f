# shellcheck shell=bash
# The lab's assertions, with real traffic from the clients; sourced by `vagrant/lab check`, which
# provides on(), deliver_config(), say() and the address plan. Every assertion prints one line;
# a failure names the host and the assertion and shows the evidence: what the internet host saw
# (its answer and its request log), the client's WireGuard state, its gateway's peers.
# The fleet: tenant-a is placed on gw1 (interface wg-gw1, egress A), tenant-b on gw2 (wg-gw2,
# egress B); the operator's CLI runs on the db host, beside PostgreSQL. High availability:
# tenant-c's interface wg-ha runs on both (gw1 active), keepalived floats its endpoint and egress C.

# gw_of CLIENT, wg_of GATEWAY, egress_of CLIENT: the lab's placement (db.sh writes it).
# tenant-c's gateway is whichever holds its egress (gw1 when both are well).
gw_of() { case $1 in tenant-a) echo gw1 ;; tenant-b) echo gw2 ;; tenant-c) ha_holder gw1 ;; esac; }
wg_of() { case $1 in gw1) echo "$WG_IFACE_GW1" ;; gw2) echo "$WG_IFACE_GW2" ;; esac; }
wg_of_client() { case $1 in tenant-c) echo "$WG_IFACE_HA" ;; *) wg_of "$(gw_of "$1")" ;; esac; }
egress_of() { case $1 in tenant-a) echo "$EGRESS_A" ;; tenant-b) echo "$EGRESS_B" ;; tenant-c) echo "$EGRESS_C" ;; esac; }
# ha_holders: the gateways whose wan link has tenant-c's floating egress (keepalived's), one a line.
ha_holders() {
  local gw
  for gw in gw1 gw2; do
    on "$gw" "ip -o -4 addr show dev lab-wan" </dev/null 2>/dev/null | grep -qF " $EGRESS_C/" && echo "$gw"
  done
  return 0
}
ha_holder() { local h; h=$(ha_holders | head -n 1); echo "${h:-$1}"; }  # ha_holder DEFAULT

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
  local gw
  gw=$(gw_of "$1")
  echo "$gw: wg show $(wg_of_client "$1") latest-handshakes; the agent's last log lines:"
  on "$gw" "wg show $(wg_of_client "$1") latest-handshakes; tail -n 5 /var/log/wggw-agent.log" </dev/null 2>&1
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

peer_json() { on db "wggw peer show $1/client --json" </dev/null; }
json_field() { python3 -c 'import json, sys; v = json.load(sys.stdin)[sys.argv[1]]; print(" ".join(v) if isinstance(v, list) else v)' "$1"; }
gateway_peers() { on "$1" "wg show all peers" </dev/null | awk '{print $NF}'; }  # gateway_peers GW

check_preconditions() {  # the internet host has no route to any peer address
  local addr out
  for addr in $(peer_json tenant-a | json_field addresses) $(peer_json tenant-b | json_field addresses) \
              $(peer_json tenant-c | json_field addresses); do
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
  expect_egress tenant-c 4 "$EGRESS_C" "${1:-}"
  expect_egress tenant-c 6 "$EGRESS_C6" "${1:-}"
}

check_isolation() {  # tenant-a cannot reach tenant-b's tunnel addresses; gw2 can (control)
  local addr out
  for addr in $(peer_json tenant-b | json_field addresses); do
    addr=${addr%/*}
    if ! on gw2 "ping -c 1 -W 2 $addr" </dev/null >/dev/null 2>&1; then
      fail gw2 "control: reaches tenant-b at $addr" "$(on gw2 "ping -c 1 -W 2 $addr" </dev/null 2>&1)"
    elif out=$(on tenant-a "ping -c 3 -W 1 -i 0.3 $addr" </dev/null 2>&1); then
      fail tenant-a "cannot reach tenant-b at $addr" "$out"
    else
      pass tenant-a "cannot reach tenant-b at $addr (its gateway gw2 can)"
    fi
  done
}

# The fleet's placement: each gateway runs its own interface and tenant, and nothing of the other
# (no interface, no egress address of the other gateway's tenant); both run the HA interface
# wg-ha, and exactly one of them (keepalived's master) holds tenant-c's floating egress.
check_placement() {
  local gw other mine theirs
  for gw in gw1 gw2; do
    case $gw in
      gw1) other=gw2; mine=$EGRESS_A; theirs=$EGRESS_B ;;
      gw2) other=gw1; mine=$EGRESS_B; theirs=$EGRESS_A ;;
    esac
    local links addrs
    links=$(on "$gw" "wg show interfaces" </dev/null 2>&1)
    addrs=$(on "$gw" "ip -o -4 addr show dev lab-wan" </dev/null 2>&1 | awk '{print $4}' | tr '\n' ' ')
    links=$(tr ' ' '\n' <<<"$links" | sort | tr '\n' ' ')
    if [ "$links" = "$(printf '%s\n' "$(wg_of "$gw")" "$WG_IFACE_HA" | sort | tr '\n' ' ')" ] &&
       [[ " $addrs" == *" $mine/"* ]] &&
       [[ " $addrs" != *" $theirs/"* ]]; then
      pass "$gw" "runs only what is placed on it: $links; egress $mine (not $other's $theirs)"
    else
      fail "$gw" "runs only $(wg_of "$gw") and $WG_IFACE_HA, egress $mine (nothing of $other's)" \
        "WireGuard links: $links" "lab-wan's IPv4 addresses: $addrs"
    fi
  done
  local holders
  holders=$(ha_holders | tr '\n' ' ')
  if [ "$holders" = "gw1 " ]; then
    pass gw1 "holds tenant-c's floating egress $EGRESS_C (first of $WG_IFACE_HA's gateways; gw2 stands by)"
  else
    fail gw1 "alone holds tenant-c's floating egress $EGRESS_C" "held by: ${holders:-nobody}" \
      "$(on gw1 "tail -n 10 /var/log/wggw-keepalived.log" </dev/null 2>&1)"
  fi
}

# The agents report back: the operator's `wggw gateway list` shows both gateways healthy, at the
# store's generation (lag 0).
check_reports() {  # check_reports [LABEL]
  local out rc=0 verdict
  out=$(on db "wggw gateway list --json" </dev/null 2>&1) || rc=$?
  verdict=$(python3 -c '
import json, sys
rows = json.loads(sys.stdin.read())
rows = rows.get("gateways", rows) if isinstance(rows, dict) else rows
by = {r["name"]: r for r in rows}
bad = [f"{n}: {by.get(n)}" for n in ("gw1", "gw2")
       if n not in by or by[n].get("health") != "healthy" or by[n].get("lag") != 0]
gens = ", ".join("%s at generation %s" % (n, by[n]["generation"]) for n in ("gw1", "gw2") if n in by)
print("; ".join(bad) if bad else "ok " + gens)
' <<<"$out" 2>&1) || true
  if [ $rc -eq 0 ] && [ "${verdict%% *}" = ok ]; then
    pass db "${1:-}wggw gateway list: gw1 and gw2 healthy, lag 0 (${verdict#ok })"
  else
    fail db "${1:-}wggw gateway list: gw1 and gw2 healthy, lag 0" "exit $rc: $verdict" "$out"
  fi
}

# watch_key GW KEY present|absent SECONDS: on GW, every 20 ms, whether any WireGuard interface
# there has the peer KEY; prints "ready", then the time the wanted state is seen, or "timeout".
watch_key() {
  on "$1" "echo ready; end=\$((\$(date +%s) + $4))
    while [ \$(date +%s) -lt \$end ]; do
      if wg show all peers | grep -qF '$2'; then s=present; else s=absent; fi
      [ \$s = $3 ] && { date +%s.%N; exit 0; }; sleep 0.02
    done; echo timeout" </dev/null
}

# Propagation: a change made on the operator's side (the db host) reaches the right gateway,
# carried by its agent with no command typed there, within PROPAGATION_BOUND s of the commit:
# a peer added to TENANT appears on its gateway's interface (and on no other gateway), then,
# removed, goes. Timed on one clock (the containers share the host's): from the start of the
# operator's command (the commit comes after its start-up) and from its end (the commit is done
# by then; the agent may be faster than the command's own exit) to the moment the gateway's
# interface shows the change.
PROPAGATION_BOUND=5
propagate() {  # propagate TENANT KEY present|absent CMD: runs CMD on db, watches TENANT's gateway
  local key=$2 want=$3 cmd=$4 gw out="$state/propagate.log" pid t rc=0 seen delay
  gw=$(gw_of "$1")
  watch_key "$gw" "$key" "$want" $(( PROPAGATION_BOUND + 5 )) >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q ready "$out" && break; sleep 0.05; done
  t=$(on db "date +%s.%N; $cmd >/dev/null && date +%s.%N" </dev/null 2>&1) || rc=$?
  wait "$pid" || true
  seen=$(tail -n 1 "$out")
  if [ $rc -ne 0 ] || [ "$seen" = timeout ] || [ "$seen" = ready ]; then
    fail "$gw" "$1: the operator's '$cmd' is applied here within $PROPAGATION_BOUND s" \
      "operator: exit $rc, started and ended at: $t" "watch: $seen" \
      "$(on "$gw" "tail -n 10 /var/log/wggw-agent.log" </dev/null 2>&1)"
    return 1
  fi
  local start end since_start since_end
  read -r start end <<<"$(echo $t)"
  since_start=$(awk -v a="$start" -v b="$seen" 'BEGIN {printf "%.2f", b - a}')
  since_end=$(awk -v a="$end" -v b="$seen" 'BEGIN {printf "%.2f", b - a}')
  if awk -v d="$since_end" -v b="$PROPAGATION_BOUND" 'BEGIN {exit !(d <= b)}'; then
    case $since_end in
      -*) since_end="before the command had exited" ;; *) since_end="$since_end s after it exited" ;;
    esac
    pass "$gw" "$1: the operator's '${cmd%% --*}' applied here by its agent $since_start s after the command started ($since_end)"
  else
    fail "$gw" "$1: the operator's change is applied within $PROPAGATION_BOUND s of the commit" \
      "applied $since_end s after the command ended"
  fi
}

check_propagation() {  # check_propagation TENANT
  local key other
  key=$(on db "wg genkey | wg pubkey" </dev/null)   # only the public half leaves that host
  propagate "$1" "$key" present "wggw peer add $1/probe --public-key $key" || return
  case $(gw_of "$1") in gw1) other=gw2 ;; gw2) other=gw1 ;; esac
  if gateway_peers "$other" | grep -qxF "$key"; then
    fail "$other" "$1's new peer is not applied here (placed on $(gw_of "$1"))" "wg show all peers has $key"
  else
    pass "$other" "$1's new peer is not applied here (placed on $(gw_of "$1"))"
  fi
  propagate "$1" "$key" absent "wggw peer remove $1/probe"
}

# Rotation, end to end, from the operator's side: the cron job installed on the db host runs its
# command line with the lab's short policy; the gateways' agents apply the new keys beside the
# old ones, which keep working during the grace period; the new configs go from the job's outbox
# to the clients, which reconnect; once the grace is over, the next cron run retires the old
# keys, the agents take them off the gateways, and the old config gets no answer any more.
check_rotation() {
  local grace=30 host old_keys new_keys key t0 old_conf_a rc=0
  old_keys="$(peer_json tenant-a | json_field public_key) $(peer_json tenant-b | json_field public_key) $(peer_json tenant-c | json_field public_key)"
  old_conf_a=$(on tenant-a "cat /etc/wggw-lab/$WG_IFACE.conf" </dev/null)
  t0=$SECONDS
  on db "/wggw/vagrant/provision/run-cron-job /etc/cron.d/wggw-rotate --older-than 0s --grace ${grace}s" </dev/null || rc=$?
  if [ $rc -ne 0 ]; then
    fail db "the cron job rotates (--older-than 0s --grace ${grace}s)" "exit $rc"
    return
  fi
  new_keys="$(peer_json tenant-a | json_field public_key) $(peer_json tenant-b | json_field public_key) $(peer_json tenant-c | json_field public_key)"
  for key in $old_keys; do
    case " $new_keys " in *" $key "*) fail db "the cron job rotated the key $key" "it is still the peer's current key"; return ;; esac
  done
  pass db "the cron job rotated the three peers' keys"
  expect_egress tenant-a 4 "$EGRESS_A" "grace period, old key: "
  local conf mode
  for host in tenant-a tenant-b tenant-c; do
    conf=/var/lib/wggw/outbox/$host/client.conf   # the cron entry's --out, as its comment documents
    mode=$(on db "stat -c %a $conf" </dev/null 2>&1 || true)
    if [ "$mode" != 600 ]; then
      fail db "the cron job wrote $host's new config to $conf, mode 0600" "stat: $mode" \
        "$(on db "ls -lR /var/lib/wggw/outbox" </dev/null 2>&1)"
      return
    fi
    on db "cat $conf" </dev/null | deliver_config "$host" >/dev/null
  done
  pass db "delivered the new configs from the job's outbox (0600); the clients reconnected"
  check_egress "new key: "
  say "waiting out the ${grace} s grace period"
  sleep $(( grace + 2 - (SECONDS - t0) > 0 ? grace + 2 - (SECONDS - t0) : 0 ))
  on db "/wggw/vagrant/provision/run-cron-job /etc/cron.d/wggw-rotate" </dev/null || rc=$?
  [ $rc -eq 0 ] || fail db "the next cron run (as installed) succeeds" "exit $rc"
  local gw peers deadline
  for gw in gw1 gw2; do
    deadline=$(( SECONDS + PROPAGATION_BOUND + 1 ))
    while peers=$(gateway_peers "$gw"); do
      for key in $old_keys; do grep -qxF "$key" <<<"$peers" && break; key=; done
      [ -n "$key" ] && [ $SECONDS -lt $deadline ] || break
      sleep 0.2
    done
    if [ -n "$key" ]; then
      fail "$gw" "its agent took the retired old keys off within $PROPAGATION_BOUND s" \
        "still there: $key" "peers:" "$peers"
    else
      pass "$gw" "its agent took the retired old keys off after the grace period"
    fi
  done
  printf '%s\n' "$old_conf_a" | deliver_config tenant-a >/dev/null
  expect_no_egress tenant-a 4 "old config after retirement"
  on db "wggw peer config tenant-a/client" </dev/null | deliver_config tenant-a >/dev/null
  expect_egress tenant-a 4 "$EGRESS_A" "new config again: "
}

# Each gateway's agent heals a fault with no command typed. The gateway's `wggw agent --gateway`
# (provisioning runs it as a service) must put back what a fault removed while its tenant's
# client keeps sending: its HTTP probes leave by its egress IP again within HEAL_BOUND s of the
# fault, nothing reaches the internet host with any other source meanwhile (nft counters there),
# and the agent's repairs counter shows that it repaired. No wggw command runs on the gateway
# between fault and heal.
HEAL_BOUND=5
agent_pid() { { on "$1" "cat /run/wggw/agent.lock" </dev/null 2>/dev/null || true; } | awk '{print $1}'; }
agent_repairs() {
  { on "$1" "curl -sf --max-time 3 http://127.0.0.1:9586/metrics" </dev/null || true; } |
    awk '/^wggw_repairs_total[{ ]/ {n += $NF} END {print n + 0}'
}

# The internet host counts every packet that reaches it with a source other than the egress IPs
# (neighbour discovery and MLD aside), and keeps the sources it saw: in table TABLE (default
# wggwlab_watch, one fault's window; wggwlab_watchall watches the whole check), made afresh.
watch_sources() {
  local table=${1:-wggwlab_watch}
  on internet "nft -f /dev/stdin" <<NFT
table inet $table
delete table inet $table
table inet $table {
  set wrong4 { type ipv4_addr; flags dynamic; size 256; }
  set wrong6 { type ipv6_addr; flags dynamic; size 256; }
  chain pre {
    type filter hook prerouting priority -300; policy accept;
    iifname != "lab-wan" return
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-report, mld2-listener-report } return
    # link-scope multicast is the gateways' own link business (VRRP adverts, IGMP), never egress
    ip daddr 224.0.0.0/24 return
    ip6 daddr ff02::/16 return
    ip saddr != { $EGRESS_A, $EGRESS_B, $EGRESS_C } add @wrong4 { ip saddr } counter
    ip6 saddr != { $EGRESS_A6, $EGRESS_B6, $EGRESS_C6 } add @wrong6 { ip6 saddr } counter
  }
}
NFT
}
wrong_sources() {  # [TABLE]: the packets counted and the sources seen, as one line; empty: none
  { on internet "nft list table inet ${1:-wggwlab_watch}" </dev/null || true; } |
    awk '/counter packets/ {n += $(NF - 2)} /elements = / {sub(/.*elements = /, ""); s = s $0 " "}
         END {if (n) printf "%d packet(s) from: %s", n, s}'
}

# heal_probe CLIENT: the client's side, for 10 s: an HTTP request every ~0.1 s ("TIME ANSWER"
# lines, "-" for no answer) while it pings the internet host every 50 ms (v4, v6).
heal_probe() {
  on "$1" "end=\$((\$(date +%s) + 10))
    ping -q -i 0.05 -w 10 $INET >/dev/null 2>&1 & ping -6 -q -i 0.05 -w 10 $INET6 >/dev/null 2>&1 &
    while [ \$(date +%s) -lt \$end ]; do
      a=\$(curl -s -4 --max-time 0.5 http://$INET/); echo \"\$(date +%s.%N) \${a:--}\"; sleep 0.05
    done; wait" </dev/null
}

# heal_verdict T_FAULT PROBES WANT: "ok SECONDS LOST TOTAL" or "FAIL why". The clocks compared
# are one (containers share the host's); on VMs they are NTP's.
heal_verdict() {
  awk -v t="$1" -v want="$3" -v bound="$HEAL_BOUND" '
    $1 < t {before = $2; next}
    {after++; if ($2 == "-") lost++; else if ($2 != want) wrong = wrong " " $2
     else if (!ok) ok = $1 - t; last = $2}
    END {
      if (before != want) {print "FAIL no traffic before the fault (last answer: " before ")"; exit}
      if (wrong != "") {print "FAIL answers with another source after the fault:" wrong; exit}
      if (!ok || ok > bound) {print "FAIL no answer from " want " within " bound " s"; exit}
      if (last != want) {print "FAIL traffic stopped again after it healed"; exit}
      printf "ok %.2f %d %d", ok, lost + 0, after}' "$2"
}

heal_after() {  # heal_after LABEL CLIENT FAULT: FAULT runs on CLIENT's gateway while CLIENT probes
  local label=$1 client=$2 fault=$3 out="$state/heal.log" gw want pid t_fault pid0 pid1 rep0 rep1 verdict wrong
  gw=$(gw_of "$client")
  want=$(egress_of "$client")
  pid0=$(agent_pid "$gw")
  if [ -z "$pid0" ] || ! on "$gw" "kill -0 $pid0 && test -S /run/wggw/agent.sock" </dev/null; then
    fail "$gw" "wggw agent runs (provisioned as a service)" \
      "$(on "$gw" "tail -n 20 /var/log/wggw-agent.log" </dev/null 2>&1)"
    return
  fi
  rep0=$(agent_repairs "$gw")
  watch_sources
  heal_probe "$client" >"$out" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do [ -s "$out" ] && break; sleep 0.1; done
  sleep 1
  t_fault=$({ on "$gw" "date +%s.%N; $fault" </dev/null || true; } | head -n 1)
  wait "$pid" || true
  verdict=$(heal_verdict "$t_fault" "$out" "$want")
  wrong=$(wrong_sources)
  rep1=$(agent_repairs "$gw")
  pid1=$(agent_pid "$gw")
  on internet "nft delete table inet wggwlab_watch" </dev/null || true
  if [ "${verdict%% *}" != ok ]; then
    fail "$client" "$label on $gw: leaves by $want again within $HEAL_BOUND s, no command typed" \
      "${verdict#FAIL }" "probes (time, answer) from 1 s before the fault:" \
      "$(awk -v t="$t_fault" '$1 >= t - 1' "$out" | head -n 40)" \
      "the agent's log:" "$(on "$gw" "tail -n 15 /var/log/wggw-agent.log" </dev/null 2>&1)"
  else
    local secs lost total
    read -r _ secs lost total <<<"$verdict"
    pass "$client" "$label on $gw: healed with no command typed: $want again $secs s after the fault ($lost of $total probes lost)"
  fi
  if [ -n "$wrong" ]; then
    fail internet "$label: nothing arrives with a source other than the egress IPs" "$wrong"
  else
    pass internet "$label: nothing arrived with a source other than the egress IPs"
  fi
  if [ "$pid1" != "$pid0" ] || [ "${rep1:-0}" -le "${rep0:-0}" ]; then
    fail "$gw" "$label: repaired by the running agent (pid $pid0)" \
      "agent pid now: ${pid1:-none}; wggw_repairs_total $rep0 -> $rep1"
  else
    pass "$gw" "$label: repaired by the running agent (pid $pid0; wggw_repairs_total $rep0 -> $rep1)"
  fi
}

# Two faults that fail closed, one on each gateway: every nft table flushed on gw1, and wggw's
# routing ip rules deleted on gw2. Its `unreachable` guard rules are kept on purpose: the lab's
# gateways have a default route to the machine running the lab (docker's management bridge),
# which tenant traffic, SNATed, would take with no wggw rule at all; the lab sends nothing there.
check_agent_heals() {
  heal_after "nft flush ruleset" tenant-a "nft flush ruleset"
  heal_after "wggw's ip rules deleted" tenant-b "for f in 4 6; do ip -\$f rule show |
    awk -F: '\$1 >= 10000 && \$1 <= 31999 && !/unreachable/ {print \"rule del pref \" \$1}' |
    ip -\$f -force -batch - || true; done"
  # `wggw down` while the agent runs would be undone at once: it refuses and removes nothing.
  local out rc=0
  out=$(on gw1 "wggw down" </dev/null 2>&1) || rc=$?
  if [ $rc -eq 75 ] && [ -n "$(agent_pid gw1)" ]; then
    pass gw1 "wggw down refuses while the agent runs (exit 75): ${out#wggw: error: }"
  else
    fail gw1 "wggw down refuses while the agent runs (exit 75)" "exit $rc: $out"
  fi
  expect_egress tenant-a 4 "$EGRESS_A" "after the refused down: "
}

# High availability: tenant-c's client (no persistent keepalive) sends an HTTP request every
# ~0.1 s while the gateway holding its egress is frozen whole (SIGSTOP of its agent, keepalived
# and wireguard-go: the kernel still holds the addresses, nobody speaks VRRP or WireGuard there).
# Within FAILOVER_BOUND s of the freeze the egress IP must answer the internet host from the
# standby (its MAC in the internet host's neighbour table: the standby's unsolicited ARP won) and
# the client's requests must be answered again from egress C (the new active gateway kicked a
# handshake: the client would otherwise wait ~15 s), nothing arriving with another source. Then
# the gateway is mended (SIGCONT) and the client must still work; with failback preempt the
# mended gateway holds the addresses again, with nopreempt whoever holds them keeps them.
FAILOVER_BOUND=5
FAILOVER_HOLD=7       # seconds frozen (the bound, and 2 s of traffic through the standby)
ha_pids() {  # the processes that make GW a gateway: agent, keepalived (both), wireguard-go
  on "$1" "{ awk '{print \$1}' /run/wggw/agent.lock
    for p in \$(cat /run/wggw/*.pid 2>/dev/null); do
      case \$(cat /proc/\$p/comm 2>/dev/null) in keepalived | wireguard-go) echo \$p ;; esac
    done; } | sort -u | tr '\n' ' '" </dev/null
}
mac_of() { on "$1" "cat /sys/class/net/lab-wan/address" </dev/null; }
# ha_probe SECONDS: tenant-c's requests ("TIME ANSWER", "-" for none), 0.5 s timeout each.
ha_probe() {
  on tenant-c "end=\$((\$(date +%s) + $1))
    while [ \$(date +%s) -lt \$end ]; do
      a=\$(curl -s -4 --max-time 0.5 http://$INET/); echo \"\$(date +%s.%N) \${a:--}\"; sleep 0.05
    done" </dev/null
}
# ha_takeover_watch MAC SECONDS: on the internet host, the time egress C first answers a ping
# with MAC (the standby's) as its neighbour entry, or "timeout".
ha_takeover_watch() {
  on internet "echo ready; end=\$((\$(date +%s) + $2))
    while [ \$(date +%s) -lt \$end ]; do
      if ping -c 1 -W 0.2 $EGRESS_C >/dev/null 2>&1 &&
         ip neigh show $EGRESS_C dev lab-wan | grep -qi 'lladdr $1'; then date +%s.%N; exit 0; fi
      sleep 0.05
    done; echo timeout" </dev/null
}
# ha_verdict T0 T1 PROBES: over the probes from T0 to T1, "ok SECONDS LOST TOTAL" (SECONDS: from
# T0 to the first good answer after the last lost one) or "FAIL why".
ha_verdict() {
  awk -v t0="$1" -v t1="$2" -v want="$EGRESS_C" '
    $1 < t0 {before = $2; next}
    $1 >= t1 {next}
    {n++; if ($2 == "-") {lost++; good = 0} else if ($2 != want) wrong = wrong " " $2
     else if (!good) good = $1}
    END {
      if (before != want) {print "FAIL no good answer just before (last: " before ")"; exit}
      if (wrong != "") {print "FAIL answers with another source:" wrong; exit}
      if (!good) {print "FAIL no good answer after the last lost request"; exit}
      printf "ok %.2f %d %d", (lost ? good - t0 : 0), lost + 0, n}' "$3"
}

check_failover() {
  local active standby pids out="$state/failover.log" watch="$state/takeover.log" probe watcher
  local t_fault t_mend t_take verdict secs lost total wrong mend_verdict
  active=$(ha_holders | tr '\n' ' ')
  case $active in
    "gw1 ") active=gw1 standby=gw2 ;; "gw2 ") active=gw2 standby=gw1 ;;
    *) fail tenant-c "failover: one gateway holds egress C before" "held by: ${active:-nobody}"; return ;;
  esac
  expect_egress tenant-c 4 "$EGRESS_C" "failover, before (via $active): "
  pids=$(ha_pids "$active")
  watch_sources
  ha_probe $(( FAILOVER_HOLD + 14 )) >"$out" 2>&1 &
  probe=$!
  ha_takeover_watch "$(mac_of "$standby")" $(( FAILOVER_BOUND + 10 )) >"$watch" 2>&1 &
  watcher=$!
  for _ in $(seq 1 50); do [ -s "$out" ] && grep -q ready "$watch" && break; sleep 0.1; done
  sleep 1
  t_fault=$({ on "$active" "date +%s.%N; kill -STOP $pids" </dev/null || true; } | head -n 1)
  say "failover: froze $active (pids $pids); $standby stands by"
  wait "$watcher" || true
  t_take=$(tail -n 1 "$watch")
  sleep $(( FAILOVER_HOLD - 1 ))
  t_mend=$({ on "$active" "date +%s.%N; kill -CONT $pids" </dev/null || true; } | head -n 1)
  wait "$probe" || true
  wrong=$(wrong_sources)
  on internet "nft delete table inet wggwlab_watch" </dev/null || true
  if [ "$t_take" = timeout ] || [ "$t_take" = ready ] || [ -z "$t_take" ]; then
    fail internet "failover: egress C answers from $standby within $FAILOVER_BOUND s" \
      "watch: ${t_take:-nothing}" "$(on "$standby" "tail -n 10 /var/log/wggw-keepalived.log" </dev/null 2>&1)"
  else
    secs=$(awk -v a="$t_fault" -v b="$t_take" 'BEGIN {printf "%.2f", b - a}')
    if awk -v d="$secs" -v b="$FAILOVER_BOUND" 'BEGIN {exit !(d <= b)}'; then
      pass internet "failover: egress $EGRESS_C answers from $standby $secs s after $active froze (takeover)"
    else
      fail internet "failover: egress C answers from $standby within $FAILOVER_BOUND s" "after $secs s"
    fi
  fi
  verdict=$(ha_verdict "$t_fault" "$t_mend" "$out")
  if [ "${verdict%% *}" = ok ]; then
    read -r _ secs lost total <<<"$verdict"
    if awk -v d="$secs" -v b="$FAILOVER_BOUND" 'BEGIN {exit !(d <= b)}'; then
      pass tenant-c "failover: answered from $EGRESS_C again $secs s after $active froze, via $standby (client recovery; $lost of $total requests lost, no keepalive)"
    else
      fail tenant-c "failover: answered again within $FAILOVER_BOUND s" "after $secs s"
    fi
  else
    fail tenant-c "failover: answered from $EGRESS_C again within $FAILOVER_BOUND s, via $standby" \
      "${verdict#FAIL }" "requests (time, answer) from 1 s before:" \
      "$(awk -v t="$t_fault" '$1 >= t - 1' "$out" | head -n 60)" \
      "$standby: $(on "$standby" "wg show $WG_IFACE_HA; tail -n 8 /var/log/wggw-agent.log; tail -n 8 /var/log/wggw-keepalived.log" </dev/null 2>&1)"
  fi
  check_kicked "$standby" "$t_fault"
  mend_verdict=$(awk -v t="$t_mend" -v want="$EGRESS_C" '$1 >= t {n++; last = $2; if ($2 == "-") lost++}
    END {printf "%s %d %d", last == want ? "ok" : "FAIL", lost + 0, n}' "$out")
  check_failback "$active" "$standby" "$mend_verdict"
  if [ -n "$wrong" ]; then
    fail internet "failover: nothing arrives with a source other than the egress IPs" "$wrong"
  else
    pass internet "failover: nothing arrived with a source other than the egress IPs (leak watch: 0 packets)"
  fi
}

# check_kicked STANDBY T_FAULT: the client's session after the takeover is with the standby (its
# wg-ha shows a handshake with tenant-c's key since the fault), started by the standby's agent on
# keepalived's notify (its log line `vrrp interface=wg-ha state=MASTER kicked=N`).
check_kicked() {
  local key hs kick
  key=$(peer_json tenant-c | json_field public_key)
  hs=$(on "$1" "wg show $WG_IFACE_HA latest-handshakes" </dev/null 2>&1 | awk -v k="$key" '$1 == k {print $2}')
  kick=$(on "$1" "grep 'state=MASTER' /var/log/wggw-agent.log | tail -n 1" </dev/null 2>&1)
  if [ -n "$hs" ] && [ "$hs" -ge "${2%.*}" ]; then
    pass "$1" "failover: tenant-c's session is with $1 (handshake $(( hs - ${2%.*} )) s after the freeze; agent: ${kick:-no MASTER line})"
  else
    fail "$1" "failover: tenant-c's session is with $1 (a handshake since the freeze)" \
      "latest handshake: ${hs:-none}, freeze at ${2%.*}" "agent: ${kick:-no MASTER line}"
  fi
}

check_failback() {  # check_failback MENDED STANDBY "ok|FAIL LOST TOTAL": after the mend
  local mended=$1 standby=$2 ok lost total want deadline holders
  read -r ok lost total <<<"$3"
  if [ "$ok" = ok ]; then
    pass tenant-c "failover: still answered from $EGRESS_C after $mended was mended ($lost of $total requests lost since)"
  else
    fail tenant-c "failover: still answered from $EGRESS_C after $mended was mended" \
      "last requests:" "$(tail -n 20 "$state/failover.log")"
  fi
  case $LAB_HA_FAILBACK in preempt) want=$mended ;; *) want="" ;; esac
  deadline=$(( SECONDS + 10 ))
  while holders=$(ha_holders | tr '\n' ' '); [ $SECONDS -lt $deadline ]; do
    if [ -n "$want" ]; then [ "$holders" = "$want " ] && break
    else case $holders in "gw1 " | "gw2 ") break ;; esac; fi
    sleep 0.2
  done
  if { [ -n "$want" ] && [ "$holders" = "$want " ]; } ||
     { [ -z "$want" ] && case $holders in "gw1 " | "gw2 ") true ;; *) false ;; esac; }; then
    pass "${holders% }" "failback $LAB_HA_FAILBACK: ${holders% } alone holds egress C after the mend"
  else
    fail "$mended" "failback $LAB_HA_FAILBACK: ${want:-one gateway} alone holds egress C after the mend" \
      "held by: ${holders:-nobody}"
  fi
  expect_egress tenant-c 4 "$EGRESS_C" "after the failover and mend: "
  expect_egress tenant-c 6 "$EGRESS_C6" "after the failover and mend: "
}

# Every host restarted (`vagrant reload`): provisioning runs again, PostgreSQL starts again, each
# gateway's agent rebuilds its part of the kernel state from the store, the clients reconnect
# with the configs they hold, and all works again.
check_reload() {
  local rc=0 gw pid
  say "restarting every host (vagrant reload)"
  vagrant reload >"$state/reload.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    fail all "vagrant reload succeeds" "exit $rc; the end of its output:" "$(tail -n 20 "$state/reload.log")"
    return
  fi
  ssh_config
  pass all "vagrant reload: every host restarted and provisioned again"
  watch_sources wggwlab_watchall
  for gw in gw1 gw2; do
    pid=$(agent_pid "$gw")
    if [ -n "$pid" ] && on "$gw" "kill -0 $pid && test -S /run/wggw/agent.sock" </dev/null; then
      pass "$gw" "after reload: wggw agent --gateway $gw runs again (pid $pid, started by provisioning)"
    else
      fail "$gw" "after reload: wggw agent --gateway $gw runs again" \
        "$(on "$gw" "tail -n 20 /var/log/wggw-agent.log" </dev/null 2>&1)"
    fi
  done
  check_egress "after reload: "
  check_isolation
  check_placement
  check_reports "after reload: "
}

# The leak watch over the whole check: the internet host's table wggwlab_watchall counts every
# packet with a source other than the egress IPs from the first assertion to the reload (which
# restarts the internet host too), and again from the reload to the end. First its control: a
# packet from gw1's own uplink address is counted; then the table is made afresh.
start_leak_watch() {
  watch_sources wggwlab_watchall
  on gw1 "ping -c 1 -W 2 -I $GW1_UPLINK $INET" </dev/null >/dev/null 2>&1 || true
  local seen
  seen=$(wrong_sources wggwlab_watchall)
  case $seen in
    *"$GW1_UPLINK"*) pass internet "control: the source watch counts a packet from $GW1_UPLINK" ;;
    *) fail internet "control: the source watch counts a packet from $GW1_UPLINK" "saw: ${seen:-nothing}" ;;
  esac
  watch_sources wggwlab_watchall
}
check_leak_watch() {  # check_leak_watch SPAN
  local wrong
  wrong=$(wrong_sources wggwlab_watchall)
  if [ -n "$wrong" ]; then
    fail internet "$1: nothing arrived with a source other than the egress IPs" "$wrong"
  else
    pass internet "$1: nothing arrived with a source other than the egress IPs"
  fi
}

run_checks() {
  start_leak_watch
  check_preconditions
  check_egress
  check_isolation
  check_placement
  check_reports
  check_propagation tenant-a
  check_propagation tenant-b
  check_failover
  check_agent_heals
  check_rotation
  check_leak_watch "the whole check before the reload"
  check_reload
  check_leak_watch "after the reload"
  if [ $checks_failed -gt 0 ]; then
    say "check: $checks_failed assertion(s) FAILED"
    return 1
  fi
  say "check: all assertions passed"
}
