# shellcheck shell=bash
# Shared by every host's provisioning, on every provider: the address plan, packages that may be
# missing (boxes), and the lab links, found by address (docker assigns it; a restarted container
# renumbers its interfaces) or by MAC (boxes) and named for their role: lab-access, lab-wan.
# Sourced by db.sh, gateway.sh, client.sh, internet.sh. Vagrant passes LAB_HOST and LAB_NETS
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

# install_wggw: wggw from the checkout into the venv /opt/wggw, behind /usr/local/bin/wggw (the
# wrapper provision/wggw: the fleet's settings from /etc/wggw/wggw.env, then the real one).
# `vagrant/lab up` builds its wheel and its dependencies' on the host into vagrant/.lab/wheels:
# the lab's containers have no way out to PyPI, by design. A VM with internet whose Python
# differs from the host's gets the missing dependencies from PyPI instead.
install_wggw() {
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
  local venv=/opt/wggw wheels="$lab_dir/.lab/wheels"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  local pip=("$venv/bin/pip" install -q --disable-pip-version-check --find-links "$wheels")
  "${pip[@]}" --no-index wggw 2>/dev/null || "${pip[@]}" wggw
  "${pip[@]}" --no-index --force-reinstall --no-deps wggw   # this checkout's, even if the version is unchanged
  rm -f /usr/local/bin/wggw
  install -m 0755 "$lab_dir/provision/wggw" /usr/local/bin/wggw
}

# The store every wggw of the lab works on: PostgreSQL on the db host, over the lab's control
# network, TLS verified against the db host's own certificate (copied to /etc/wggw/db-ca.crt),
# the password in a libpq passfile (never in the URL or on a command line), the secrets at rest
# sealed with the key file. Quoted: the URL holds '&'.
STORE_URL="postgresql://wggw@$DB_CTL:$DB_PORT/wggw?sslmode=verify-full&sslrootcert=/etc/wggw/db-ca.crt&connect_timeout=5"

# write_wggw_env [GATEWAY]: /etc/wggw/wggw.env (0600), read by the wrapper before every wggw.
write_wggw_env() {
  install -d -m 0700 /etc/wggw
  (
    umask 077
    {
      printf "WGGW_DB='%s'\n" "$STORE_URL"
      printf 'WGGW_KEY_FILE=/etc/wggw/store.key\nPGPASSFILE=/etc/wggw/pgpass\n'
      [ -z "${1:-}" ] || printf 'WGGW_GATEWAY=%s\nWGGW_HA_FAILBACK=%s\n' "$1" "$LAB_HA_FAILBACK"
    } >/etc/wggw/wggw.env.new
    mv /etc/wggw/wggw.env.new /etc/wggw/wggw.env
  )
}
