"""Test helper: a throwaway Prometheus server (Debian's /usr/bin/prometheus) inside a lab
namespace, scraping the agent every second, and its HTTP API read with urllib from this
process: each connection's socket is made by a short thread that first joins the namespace
(setns on that thread only), so nothing is added to the host's own network namespace."""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

CLONE_NEWNET = 0x40000000
PROM_PORT = 9090
CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: wggw
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""


def ns_connect(netns: str, host: str, port: int, timeout: float | None) -> socket.socket:
    """A TCP connection made inside network namespace `netns`."""
    out: dict = {}

    def connect() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            out["sock"] = socket.create_connection((host, port), timeout)
        except OSError as e:
            out["error"] = e

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(30)
    if "error" in out:
        raise out["error"]
    return out["sock"]


class _NsConnection(http.client.HTTPConnection):
    def __init__(self, host: str, *, netns: str, **kw) -> None:
        super().__init__(host, **kw)
        self.netns = netns

    def connect(self) -> None:
        self.sock = ns_connect(self.netns, self.host, self.port, self.timeout)


class _NsHandler(urllib.request.HTTPHandler):
    def __init__(self, netns: str) -> None:
        super().__init__()
        self.netns = netns

    def http_open(self, req):
        return self.do_open(_NsConnection, req, netns=self.netns)


class Prometheus:
    """Started by __init__ (raises if it is not ready in `timeout`); stop() kills it by PID
    and removes its files."""

    def __init__(self, netns: str, workdir: Path, target_port: int, timeout: float) -> None:
        self.netns = netns
        self.dir = workdir / f"prometheus-{time.monotonic_ns()}"
        self.dir.mkdir()
        config = self.dir / "prometheus.yml"
        config.write_text(CONFIG.format(port=target_port))
        self.log_path = self.dir / "log"
        argv = [
            "ip", "netns", "exec", netns, "/usr/bin/prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{PROM_PORT}",
            "--storage.tsdb.retention.time=1h",
        ]  # fmt: skip
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _NsHandler(netns)
        )
        with open(self.log_path, "w") as log:
            # `ip netns exec` execs in place: this PID is Prometheus's own.
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            try:
                if self._get("/-/ready").startswith("Prometheus"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout}s")

    def _get(self, path: str) -> str:
        url = f"http://127.0.0.1:{PROM_PORT}{path}"
        with self.opener.open(url, timeout=10) as resp:
            return resp.read().decode()

    def api(self, path: str, **params: str) -> object:
        """GET /api/v1/PATH; fails on an error answer; returns `data`."""
        query = urllib.parse.urlencode(params)
        try:
            body = json.loads(self._get(f"/api/v1/{path}?{query}"))
        except urllib.error.HTTPError as e:  # 400/422: a bad query; the body says why
            body = json.loads(e.read().decode())
        assert body.get("status") == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query: [{'metric': {...}, 'value': [ts, 'str']}, ...] (vector) or a scalar."""
        data = self.api("query", query=expr)
        assert isinstance(data, dict)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def value(self, expr: str) -> float:
        """The single value of `expr` (fails unless exactly one series answers)."""
        result = self.query(expr)
        assert len(result) == 1, f"{expr}: {result}"
        return float(result[0]["value"][1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)
