"""One line per event on stderr, as text (`2026-11-29T21:00:00Z repair kind=rule ...`) or as
JSON (`--log-format json`) for log shippers. Never a secret: callers pass names and counts."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class Log:
    def __init__(self, fmt: str = "text", stream: TextIO | None = None) -> None:
        if fmt not in ("text", "json"):
            raise ValueError(fmt)
        self.fmt = fmt
        self.stream = stream or sys.stderr

    def __call__(self, event: str, **fields: Any) -> None:
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        if self.fmt == "json":
            line = json.dumps({"ts": stamp, "event": event, **fields}, default=str)
        else:
            parts = [f"{k}={_text(v)}" for k, v in fields.items()]
            line = " ".join([stamp, event, *parts])
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not stop the agent


def _text(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text or '"' in text) else text
