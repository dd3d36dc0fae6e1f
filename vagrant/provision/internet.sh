#!/usr/bin/env bash
# The "internet" host: answers HTTP on v4 and v6 with the source address it sees, and has no
# route back to any tenant pool (no default route at all), so only SNATed traffic gets answers.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need python3:python3 curl:curl
lab_links
add6 lab-wan "$INET6/64"
while ip -4 route del default 2>/dev/null; do :; done
while ip -6 route del default 2>/dev/null; do :; done

pidfile=/run/wggw-lab-whoami.pid
if [ -z "$(running_pid "$pidfile" python3)" ]; then
  log "starting the whoami HTTP service on [$INET]:80 and [$INET6]:80"
  setsid python3 "$lab_dir/provision/whoami.py" --port 80 --log /var/log/wggw-lab-whoami.log \
    </dev/null >>/var/log/wggw-lab-whoami.err 2>&1 &
  echo $! >"$pidfile"
fi
wait_for "whoami on $INET" 10 curl -sf --max-time 1 "http://$INET/"
wait_for "whoami on [$INET6]" 10 curl -sf --max-time 1 "http://[$INET6]/"
log "ready"
