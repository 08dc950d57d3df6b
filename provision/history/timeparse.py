"""Times as the history store keeps them (UTC epoch seconds) and as users write them."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from provision.errors import InputError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGO = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def from_iso(text: str | None, default: float) -> float:
    """An ISO 8601 time (``2025-01-21T02:21:33Z``; naive means UTC) as epoch seconds."""
    if not text:
        return default
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return default
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def to_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_since(text: str, *, now: float | None = None, flag: str = "--since") -> float:
    """``7d``, ``36h``, ``15m`` (ago) or an ISO date/time -> epoch seconds."""
    now = time.time() if now is None else now
    t = text.strip()
    if m := _AGO.match(t):
        return max(0.0, now - float(m[1]) * _UNITS[m[2]])  # at most: since the epoch
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{flag} {text!r}: not a duration (7d, 36h, 15m) or an ISO date",
                         hint="examples: --since 7d, --since 2025-01-21T00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def parse_duration(text: str, *, flag: str) -> float:
    """``90d`` -> seconds; a bare number means days."""
    t = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", t):
        return float(t) * 86400
    if m := _AGO.match(t):
        return float(m[1]) * _UNITS[m[2]]
    raise InputError(f"{flag} {text!r}: not a duration (e.g. 14d, 36h)")
