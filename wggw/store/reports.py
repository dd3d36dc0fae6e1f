"""The agents' reports (core/fleet.py) as rows, and their SQL for both stores.

`mark` is the store's placeholder (`?` for SQLite, `%s` for psycopg); the statements are
otherwise the same. Reports are upserted without the store lock and without a generation
bump: many gateways report every few seconds, and an operator's command must not wait on them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wggw.core.fleet import GatewayReport, PeerReport

GATEWAY_COLUMNS = (
    "gateway",
    "generation",
    "healthy",
    "error",
    "version",
    "host",
    "pid",
    "started_at",
    "reported_at",
    "converged_at",
    "details",
)
PEER_COLUMNS = (
    "gateway",
    "public_key",
    "endpoint",
    "latest_handshake",
    "rx_bytes",
    "tx_bytes",
    "reported_at",
)


def _upsert(table: str, columns: tuple[str, ...], keys: tuple[str, ...], mark: str) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(mark for _ in columns)}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    )


def upsert_gateway_sql(mark: str) -> str:
    return _upsert("gateway_reports", GATEWAY_COLUMNS, ("gateway",), mark)


def upsert_peer_sql(mark: str) -> str:
    return _upsert("peer_reports", PEER_COLUMNS, ("gateway", "public_key"), mark)


def gateway_values(r: GatewayReport) -> tuple:
    return (
        r.gateway,
        r.generation,
        1 if r.healthy else 0,
        r.error,
        r.version,
        r.host,
        r.pid,
        r.started_at,
        r.reported_at,
        r.converged_at,
        json.dumps(r.details, sort_keys=True),
    )


def peer_values(r: PeerReport) -> tuple:
    return tuple(getattr(r, c) for c in PEER_COLUMNS)


def gateway_from_row(row: Mapping[str, Any]) -> GatewayReport:
    return GatewayReport(
        gateway=row["gateway"],
        generation=int(row["generation"]),
        healthy=bool(row["healthy"]),
        error=row["error"],
        version=row["version"],
        host=row["host"],
        pid=int(row["pid"]),
        started_at=row["started_at"],
        reported_at=row["reported_at"],
        converged_at=row["converged_at"],
        details=json.loads(row["details"]),
    )


def peer_from_row(row: Mapping[str, Any]) -> PeerReport:
    return PeerReport(**{c: row[c] for c in PEER_COLUMNS})
