#!/usr/bin/env bash
# The database host: Debian's PostgreSQL, a real server (the package's cluster "main", started
# with pg_ctlcluster, or by systemd on the box providers), listening on the lab's control network
# with TLS (a certificate of its own for its address) and password authentication (scram-sha-256)
# for the role `wggw`. It is also the operator's host: wggw's CLI here works on that store like
# on any other machine (over TCP and TLS, the password in a libpq passfile), and writes the
# fleet: gateways gw1 and gw2, an interface on each, tenant-a on gw1 and tenant-b on gw2, an HA
# interface on both (gw1 active) with tenant-c, one client peer per tenant; and it runs the key rotation's cron job. Every step is idempotent: this runs on every boot.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need python3:python3 curl:curl openssl:openssl pg_ctlcluster:postgresql
lab_links
install_wggw

pg_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
conf=/etc/postgresql/$pg_version/main
# The package made the cluster at install time (in the base image); make it if it did not.
[ -f "$conf/postgresql.conf" ] || pg_createcluster "$pg_version" main >/dev/null

# TLS: a self-signed certificate for the db host's address, made once; the clients verify it
# (sslmode=verify-full) against the copy in /etc/wggw/db-ca.crt.
if [ ! -s "$conf/lab-server.crt" ]; then
  log "making the server's TLS certificate (CN wggwlab-db, IP $DB_CTL)"
  (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj /CN=wggwlab-db -addext "subjectAltName=IP:$DB_CTL" \
    -keyout "$conf/lab-server.key" -out "$conf/lab-server.crt.new" 2>/dev/null)
  chown postgres:postgres "$conf/lab-server.key" "$conf/lab-server.crt.new"
  chmod 0644 "$conf/lab-server.crt.new"
  mv "$conf/lab-server.crt.new" "$conf/lab-server.crt"
fi
cat >"$conf/conf.d/wggw-lab.conf" <<CONF
# The wggw lab (vagrant/provision/db.sh): reachable on the control network, TLS only from there.
listen_addresses = 'localhost,$DB_CTL'
port = $DB_PORT
ssl = on
ssl_cert_file = '$conf/lab-server.crt'
ssl_key_file = '$conf/lab-server.key'
password_encryption = scram-sha-256
CONF
hba="hostssl wggw wggw $LAB_CTL_NET scram-sha-256"
grep -qxF "$hba" "$conf/pg_hba.conf" || echo "$hba" >>"$conf/pg_hba.conf"

if [ -d /run/systemd/system ]; then
  systemctl enable -q "postgresql@$pg_version-main"
  systemctl restart "postgresql@$pg_version-main"
else
  install -d -o postgres -g postgres -m 2775 /run/postgresql
  if ! pg_ctlcluster "$pg_version" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $pg_version (cluster main; log: /var/log/postgresql/)"
    pg_ctlcluster "$pg_version" main start
  fi
fi
psql_admin() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 "$@"; }
wait_for "PostgreSQL" 30 psql_admin -c 'SELECT 1'

# The role and its password, made once. The password goes to psql on stdin and into the libpq
# passfile (0600), which `vagrant/lab up` hands to the gateways through an ssh pipe.
install -d -m 0700 /etc/wggw
install -m 0644 "$conf/lab-server.crt" /etc/wggw/db-ca.crt
if [ ! -s /etc/wggw/pgpass ]; then
  password=$(openssl rand -hex 24)
  psql_admin <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'wggw') THEN CREATE ROLE wggw LOGIN; END IF;
END \$\$;
ALTER ROLE wggw PASSWORD '$password';
SQL
  (umask 077 && printf '%s:%s:wggw:wggw:%s\n' "$DB_CTL" "$DB_PORT" "$password" >/etc/wggw/pgpass.new)
  mv /etc/wggw/pgpass.new /etc/wggw/pgpass
  unset password
fi
[ -n "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'wggw'")" ] ||
  runuser -u postgres -- createdb -O wggw wggw

# The operator's side: the store's settings, then the fleet, by the CLI alone. `wggw init` makes
# the key file (WGGW_KEY_FILE) that seals the secrets at rest; every gateway gets a copy.
write_wggw_env
wggw init >/dev/null
for gw in gw1 gw2; do
  wggw gateway show "$gw" >/dev/null 2>&1 ||
    wggw gateway add "$gw" --uplink lab-wan --via "$INET" --via "$INET6" >/dev/null
done
add_interface() {  # add_interface NAME ENDPOINT_ADDRESS PORT GATEWAY... (by priority)
  local name=$1 endpoint=$2 port=$3 gw opts=()
  shift 3
  for gw in "$@"; do opts+=(--gateway "$gw"); done
  wggw interface show "$name" >/dev/null 2>&1 ||
    wggw interface add "$name" --listen-port "$port" --endpoint "$endpoint:$port" "${opts[@]}" >/dev/null
}
add_interface "$WG_IFACE_GW1" "$GW1_ACCESS" "$WG_PORT_GW1" gw1
add_interface "$WG_IFACE_GW2" "$GW2_ACCESS" "$WG_PORT_GW2" gw2
# High availability: on both gateways, gw1 first (active), its endpoint a floating address.
add_interface "$WG_IFACE_HA" "$HA_ENDPOINT" "$WG_PORT_HA" gw1 gw2
add_tenant() {  # add_tenant NAME INTERFACE POOL POOL6 EGRESS EGRESS6 [PEER OPTIONS...]
  wggw tenant show "$1" >/dev/null 2>&1 ||
    wggw tenant add "$1" --interface "$2" --pool "$3" --pool "$4" --egress "$5" --egress "$6" >/dev/null
  wggw peer show "$1/client" >/dev/null 2>&1 || wggw peer add "$1/client" "${@:7}" >/dev/null
}
add_tenant tenant-a "$WG_IFACE_GW1" "$POOL_A" "$POOL_A6" "$EGRESS_A" "$EGRESS_A6" --keepalive 25
add_tenant tenant-b "$WG_IFACE_GW2" "$POOL_B" "$POOL_B6" "$EGRESS_B" "$EGRESS_B6" --keepalive 25
# tenant-c's egress floats with wg-ha; its client has no keepalive on purpose: after a failover
# it gets a new session only because the new active gateway starts the handshake (the kick).
add_tenant tenant-c "$WG_IFACE_HA" "$POOL_C" "$POOL_C6" "$EGRESS_C" "$EGRESS_C6"

# Unattended rotation, as shipped, from the operator's side: one job for the whole fleet, whose
# new keys the gateways' agents apply. No cron daemon runs in the lab: `vagrant/lab check` runs
# this job's command line itself (provision/run-cron-job), with the lab's short policy appended.
install -m 0644 "$lab_dir/../templates/wggw-rotate.cron" /etc/cron.d/wggw-rotate
log "ready"
