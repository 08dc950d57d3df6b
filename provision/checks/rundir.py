"""The run directory of ``forge check``: everything a run used and produced.

Layout (every file written atomically; every JSON file has ``schema_version``)::

    runs/check-20250101T120000Z/
      spec.yaml            the merged site spec the run used
      plan.json            each node's thresholds (fraction x figure, source)
      raw/<check>/<node>.out|.err|.rc   what each program printed, and how it ended
      measurements.jsonl   the records (docs/measurements.md)
      verdict.json         per check and node: pass, fail, error, timeout, ...
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from provision.errors import InputError
from provision.expectations import SitePlan
from provision.fsutil import atomic_write_text
from provision.measurement import Measurement, write_records
from provision.remote.base import Result
from provision.spec.model import Site

SCHEMA_VERSION = 1
_SAFE = re.compile(r"[^A-Za-z0-9_.+\-\[\],]")


def stamp(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def safe_name(text: str) -> str:
    """A file name for a node or pair key (no path separators)."""
    return _SAFE.sub("_", text) or "_"


@dataclass(frozen=True)
class RunDir:
    path: Path

    @classmethod
    def create(cls, out: Path | None, base: Path = Path("runs")) -> RunDir:
        """A new, empty run directory; an existing non-empty one is refused, never reused."""
        if out is None:
            out = base / f"check-{stamp()}"
            n = 1
            while out.exists():
                n += 1
                out = base / f"check-{stamp()}-{n}"
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise InputError(f"-o {out}: exists and is not an empty directory",
                             hint="choose a new run directory; forge never overwrites one")
        out.mkdir(parents=True, exist_ok=True)
        return cls(out)

    def write_spec(self, site: Site, plan: SitePlan) -> None:
        doc = site.document if site.document is not None else {}
        head = f"# site spec used by this run (from {site.source})\n"
        atomic_write_text(self.path / "spec.yaml", head + yaml.safe_dump(doc, sort_keys=False))
        nodes = {p.node: {"profile": p.profile, "thresholds": [t.to_dict() for t in p.thresholds]}
                 for p in plan.nodes}
        self.write_json("plan.json", {"schema_version": SCHEMA_VERSION, "site": plan.site,
                                      "nodes": nodes})

    def write_raw(self, check: str, key: str, result: Result) -> None:
        d = self.path / "raw" / safe_name(check)
        name = safe_name(key)
        atomic_write_text(d / f"{name}.out", result.stdout)
        atomic_write_text(d / f"{name}.err", result.stderr)
        ended = str(result.returncode) if result.ran else result.status
        meta = {"schema_version": SCHEMA_VERSION, "status": result.status,
                "returncode": result.returncode, "detail": result.detail,
                "seconds": round(result.duration_s, 3), "argv": list(result.argv)}
        atomic_write_text(d / f"{name}.rc", f"{ended}\n")
        self.write_json(f"raw/{safe_name(check)}/{name}.json", meta)

    def write_measurements(self, records: Iterable[Measurement]) -> int:
        return write_records(self.path / "measurements.jsonl", records)

    def write_json(self, rel: str, obj: Any) -> None:
        atomic_write_text(self.path / rel, json.dumps(obj, indent=2, sort_keys=True) + "\n")
