# shellcheck shell=bash
# Shared by every host's provisioning, on every provider: the address plan, packages that may be
# missing (boxes), and the lab links, found by address (docker assigns it; a restarted container
# renumbers its interfaces) or by MAC (boxes) and named for their role: lab-access, lab-wan.
# Sourced by gateway.sh, client.sh, internet.sh. Vagrant passes LAB_HOST and LAB_NETS
# ("role=addr/len=mac ..."); they are kept in /etc/wggw-lab/host.env for runs over plain ssh.
set -euo pipefail

lab_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
set -a
# shellcheck source=../lab.env
. "$lab_dir/lab.env"
set +a

install -d -m 0755 /etc/wggw-lab
if [ -n "${LAB_NETS:-}" ]; then
  printf 'LAB_HOST=%q\nLAB_NETS=%q\n' "$LAB_HOST" "$LAB_NETS" >/etc/wggw-lab/host.env
else
  # shellcheck source=/dev/null
  . /etc/wggw-lab/host.env
fi

log() { printf '[%s] %s\n' "$LAB_HOST" "$*"; }

# need CMD:PACKAGE...: installs the Debian packages whose command is missing (the docker base
# image has them all; a plain Debian box does not).
need() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# lab_links: every lab network of this host gets its link named lab-<role>, up, with its address.
lab_links() {
  local spec role addr mac dev
  sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
  for spec in $LAB_NETS; do
    IFS='=' read -r role addr mac <<<"$spec"
    dev=$(ip -o -4 addr show to "${addr%/*}/32" | awk '{print $2; exit}')
    if [ -z "$dev" ]; then
      dev=$(ip -br link | awk -v m="$mac" 'tolower($3) == m {sub(/@.*/, "", $1); print $1; exit}')
    fi
    [ -n "$dev" ] || { log "no link with address $addr or MAC $mac"; ip -br addr >&2; return 1; }
    if [ "$dev" != "lab-$role" ]; then
      log "link $dev ($addr) is lab-$role"
      ip link set dev "$dev" down
      ip link set dev "$dev" name "lab-$role"
    fi
    sysctl -qw "net.ipv6.conf.lab-$role.disable_ipv6=0"
    ip link set dev "lab-$role" up
    ip addr replace "$addr" dev "lab-$role"
  done
}

# running_pid PIDFILE COMM: the pid in PIDFILE if that process runs and is COMM, else nothing.
running_pid() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && echo "$pid"
  return 0
}

# add6 DEV ADDR/LEN: an IPv6 address, usable at once (no duplicate address detection wait).
add6() { ip -6 addr replace "$2" dev "$1" nodad; }

# wait_for WHAT SECONDS CMD...: retries CMD every 0.2 s, bounded.
wait_for() {
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "timed out waiting for $what"; return 1; }
    sleep 0.2
  done
}
