# The kernel tier's guest side: run by the VM's PID 1 (tests/vm/init.sh) from the control share,
# where scripts/vm-test put it next to `params` (STEPS, REV, STEP_TIMEOUT) and `pytest-args`.
# It copies the checkout in, installs it (offline, editable, into the image's venv), checks that
# the kernel makes WireGuard links, then runs each step with WGGW_BACKEND=kernel (strict: no
# fallback to wireguard-go; a skipped test fails the step) and leaves <step>.log, <step>.xml,
# <step>.rc and summary.txt behind.
set -u
CTL=/mnt/ctl
. $CTL/params
say() { echo "[vm $(cut -d' ' -f1 /proc/uptime)s] $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.0f", b - a}'; }
say "booted: kernel $(uname -r), $(nproc) cpu(s), $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
now >$CTL/boot-uptime
export PATH=/opt/wggw-venv/bin:$PATH PYTHONUNBUFFERED=1 NO_COLOR=1
# CI=true: the netns suite fails instead of skipping when namespaces do not work.
export CI=true PIP_NO_INDEX=1 PIP_FIND_LINKS=/opt/wggw-wheels PIP_DISABLE_PIP_VERSION_CHECK=1
modprobe -a wireguard tun nf_tables
say "modules: $(lsmod | awk 'NR>1 {print $1}' | grep -E '^(wireguard|tun|nf_tables)$' | sort | tr '\n' ' ')"

t=$(now)
mkdir -p /mnt/src /root/wggw
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,ro src /mnt/src || { say "no src share"; exit 1; }
(cd /mnt/src && tar --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
   --exclude=__pycache__ --exclude=.pytest_cache --exclude=.mypy_cache --exclude=.ruff_cache -cf - .) \
  | tar -C /root/wggw -xf -
umount /mnt/src
cd /root/wggw || exit 1
# Editable, like scripts/install-deps, so the `wggw` console script exists; its dependencies
# are in the image already (scripts/vm-test rebuilds the image when pyproject.toml's change).
ln -sfn /opt/wggw-venv .venv
if ! timeout 600 .venv/bin/pip install -q --no-deps --no-build-isolation -e . >$CTL/install.log 2>&1; then
  say "installing the checkout failed (install.log)"; echo 1 >$CTL/setup.rc; exit 1
fi
PY=/root/wggw/.venv/bin/python
if ! { ip link add wggwvmprobe type wireguard && ip link del wggwvmprobe; }; then
  say "no kernel WireGuard in the VM"; echo 1 >$CTL/setup.rc; exit 1
fi
say "checkout $REV copied and installed in $(secs "$t") s; kernel WireGuard works"
echo "setup rc=0 seconds=$(secs "$t")" >>$CTL/summary.txt

PYTEST=("$PY" -m pytest -v -rA -p no:cacheprovider --durations=0)
export WGGW_BACKEND=kernel
# TCG emulation is 5-20x slower than native: timing bounds in the tests scale by this, and the
# agent's repair timings run 2 trials per fault kind instead of 5.
export WGGW_TIME_SCALE=8 WGGW_AGENT_TRIALS=2
for step in $STEPS; do
  say "=== step $step"
  start=$(now)
  case $step in
    contract) timeout -k 10 "$STEP_TIMEOUT" "${PYTEST[@]}" --junitxml=$CTL/$step.xml \
                tests/netns/test_wg_backends.py -k kernel ;;
    tier)     timeout -k 10 "$STEP_TIMEOUT" "${PYTEST[@]}" --junitxml=$CTL/$step.xml -m kernel_tier tests ;;
    pytest)   mapfile -d '' args <$CTL/pytest-args
              timeout -k 10 "$STEP_TIMEOUT" "${PYTEST[@]}" --junitxml=$CTL/$step.xml "${args[@]}" ;;
  esac >$CTL/$step.log 2>&1
  rc=$?
  # A skip here would hide the kernel path (the [kernel] contract tests skip where the module
  # is missing): every selected test must run.
  skipped=$($PY -c 'import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot(); print(sum(int(s.get("skipped", 0)) for s in r.iter("testsuite")))' \
    $CTL/$step.xml 2>/dev/null || echo 0)
  if [ "$step" != pytest ] && [ "$rc" = 0 ] && [ "$skipped" != 0 ]; then
    say "step $step skipped $skipped test(s): that counts as a failure here"; rc=1
  fi
  echo $rc >$CTL/$step.rc
  grep -E '^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) |^=+ .* in [0-9.]+s' $CTL/$step.log
  say "=== step $step: exit $rc in $(secs "$start") s"
  echo "$step rc=$rc seconds=$(secs "$start")" >>$CTL/summary.txt
  # Nothing of a step may outlive it into the next one.
  for ns in $(ip netns list | awk '{print $1}'); do ip netns pids "$ns" | xargs -r kill -9; ip netns del "$ns"; done
done
left="$(ip -o link show type wireguard | wc -l) wireguard link(s), $(ip netns list | wc -l) namespace(s)"
say "left behind: $left"
echo "left $left" >>$CTL/summary.txt
say "done"
