"""Prometheus metrics from a status report: values per peer and tenant, drift count, no keys."""

from prometheus_client.parser import text_string_to_metric_families

from wggw.ops import metrics

REPORT = {
    "peers": [
        {
            "name": "laptop",
            "tenant": "acme",
            "interface": "wg-acme",
            "public_key": "K" * 43 + "=",
            "configured": True,
            "latest_handshake": "2027-01-15T08:00:00Z",
            "rx_bytes": 1500,
            "tx_bytes": 900,
        },
        {
            "name": "phone",
            "tenant": "acme",
            "interface": "wg-acme",
            "public_key": "L" * 43 + "=",
            "configured": False,
            "latest_handshake": None,
            "rx_bytes": 0,
            "tx_bytes": 0,
        },
    ],
    "tenants": [{"name": "acme", "peers": 2, "active_peers": 1, "rx_bytes": 1500, "tx_bytes": 900}],
    "drift": ["wg set wg0 peer L... allowed-ips 10.0.0.3/32  # add"],
    "paths": [
        {"tenant": "acme", "family": 4, "ok": True},
        {"tenant": "acme", "family": 6, "ok": False},
    ],
}


def samples(text: str) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_values_and_labels(tmp_path):
    path = tmp_path / "wggw.prom"
    metrics.write(REPORT, path)
    got = samples(path.read_text())
    iface = ("interface", "wg-acme")
    acme_laptop = (iface, ("peer", "laptop"), ("tenant", "acme"))
    acme_phone = (iface, ("peer", "phone"), ("tenant", "acme"))
    stamp = "wggw_peer_latest_handshake_timestamp_seconds"
    assert got[(stamp, acme_laptop)] == 1_800_000_000  # 2027-01-15T08:00:00Z
    assert got[("wggw_peer_receive_bytes_total", acme_laptop)] == 1500
    assert got[("wggw_peer_transmit_bytes_total", acme_laptop)] == 900
    assert got[("wggw_peer_configured", acme_phone)] == 0
    assert got[(stamp, acme_phone)] == 0
    assert got[("wggw_tenant_receive_bytes_total", (("tenant", "acme"),))] == 1500
    assert got[("wggw_tenant_transmit_bytes_total", (("tenant", "acme"),))] == 900
    assert got[("wggw_tenant_active_peers", (("tenant", "acme"),))] == 1
    assert got[("wggw_drift_changes", ())] == 1
    assert got[("wggw_tenant_path_ok", (("family", "4"), ("tenant", "acme")))] == 1
    assert got[("wggw_tenant_path_ok", (("family", "6"), ("tenant", "acme")))] == 0
    assert "K" * 43 not in path.read_text()
