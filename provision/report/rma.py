"""The evidence bundle for one part (``forge rma NODE[:GPU] RUN...``): what a vendor asks for.

A directory, written whole or not at all (built beside the target, renamed into
place)::

    rma-gpu017-gpu3/
      evidence.json   identity, every failing reading with its limit and source,
                      the part's readings, raw excerpts, history, next commands
      README.txt      the same for a ticket, in words
      report.html     the HTML report of the part's readings (forge analyze)
      raw/            the raw output excerpts, one file per source file

Identity is what the records carry (serial, UUID, PCI bus id, VBIOS, the
node's serial from the BMC inventory where a record has it). The commands a
vendor asks for next are NVIDIA's own first steps for a suspect GPU:
``nvidia-bug-report.sh`` and the DCGM diagnostic at level 3 (level 4 with
DCGM 4, which adds the extended memory and stress tests).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provision import __version__
from provision.analyze.findings import IDENTITY, Analysis, Finding
from provision.analyze.text import qty
from provision.errors import InputError
from provision.report.table import expected_text

SCHEMA_VERSION = 1
#: lines of a raw output worth quoting: the tool's alarms and the part's names
_ALARM = re.compile(r"(?i)\b(?:fail(?:ed|ure)?|error|fault(?:y)?|died|xid|fallen off|down|"
                    r"polling|disabled|inactive|abort|warn(?:ing)?|mismatch)\b")
_EXCERPT_LINES = 60


@dataclass(frozen=True)
class Part:
    node: str
    gpu: int | None

    @classmethod
    def parse(cls, text: str) -> Part:
        node, sep, gpu = text.partition(":")
        if not node or (sep and not gpu.isdigit()):
            raise InputError(f"{text!r}: name the part as NODE or NODE:GPU (e.g. gpu017:3)")
        return cls(node, int(gpu) if sep else None)

    @property
    def label(self) -> str:
        return self.node if self.gpu is None else f"{self.node} GPU {self.gpu}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^\w.-]", "_", self.node) + ("" if self.gpu is None else f"-gpu{self.gpu}")

    def owns(self, node: str, gpu: int | None) -> bool:
        """A reading of this part: the node's own (GPU None), or this GPU's."""
        return node == self.node and (self.gpu is None or gpu is None or gpu == self.gpu)


def next_commands(part: Part, bus_id: str | None) -> list[dict[str, str]]:
    sel = f" -i {bus_id}" if bus_id else (f" -i {part.gpu}" if part.gpu is not None else "")
    return [
        {"command": "sudo nvidia-bug-report.sh",
         "why": "the log NVIDIA support asks for first (driver state, kernel log, nvidia-smi -q)"},
        {"command": f"dcgmi diag -r 3{' -i ' + str(part.gpu) if part.gpu is not None else ''}",
         "why": "DCGM diagnostic level 3 (memory, PCIe, NVLink, targeted stress); use -r 4 with"
                " DCGM 4 for the extended memory test"},
        {"command": f"nvidia-smi -q{sel} -d ECC,PAGE_RETIREMENT,ROW_REMAPPER,PCIE",
         "why": "ECC counters, retired pages / remapped rows and the PCIe link of the part"},
    ]


def _matches(finding: Finding, part: Part) -> bool:
    if part.owns(finding.node, finding.gpu):
        return part.gpu is None or finding.gpu is not None or not finding.gpus \
            or part.gpu in finding.gpus
    return finding.peer is not None and part.owns(finding.peer.split(":")[0], finding.gpu)


def _identity(records: Sequence[Mapping[str, Any]], part: Part) -> dict[str, Any]:
    out: dict[str, Any] = {"node": part.node, "gpu": part.gpu}
    for r in records:
        for k in (*IDENTITY, "model"):
            v = r.get(k)
            if v and k not in out and (k == "node_serial" or part.gpu is None
                                       or r.get("gpu") == part.gpu):
                out[k] = v
    return out


def _excerpts(runs: Sequence[Path], part: Part, words: Sequence[str]) -> list[dict[str, Any]]:
    """Lines of each raw output of the part's node that hold an alarm or a name of the part."""
    out = []
    for run in runs:
        raw = run / "raw"
        if not raw.is_dir():
            continue
        for f in sorted(raw.glob(f"*/{part.node}.out")) + sorted(raw.glob(f"*/{part.node}.err")):
            try:
                lines = f.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            keep = [i for i, ln in enumerate(lines)
                    if _ALARM.search(ln) or any(w and w in ln for w in words)]
            if not keep:
                continue
            shown = [f"{i + 1}: {lines[i]}" for i in keep[:_EXCERPT_LINES]]
            out.append({"file": str(f.relative_to(run)), "run": str(run), "lines": shown,
                        "more": max(0, len(keep) - _EXCERPT_LINES)})
    return out


def _history(db: Path | None, part: Part, identity: Mapping[str, Any]) -> list[dict[str, Any]]:
    if db is None or not Path(db).exists():
        return []
    from provision.history.store import HistoryStore

    with HistoryStore(db, readonly=True) as store:
        uuid = identity.get("uuid")
        rows = store.samples(uuid=uuid) if uuid else store.samples(nodes=[part.node])
    return [{"ts": s.ts, "node": s.node, "gpu": s.gpu, "metric": s.metric, "value": s.value,
             "serial": s.serial, "uuid": s.uuid, "detail": s.detail, "run_id": s.run_id}
            for s in rows if part.gpu is None or s.gpu in (None, part.gpu)][-500:]


def _finding(f: Finding) -> dict[str, Any]:
    return {"where": f.entity, "metric": f.metric, "severity": f.severity, "kind": f.kind,
            "measured": qty(f.value, f.unit), "value": f.value, "unit": f.unit,
            "limit": f.limit, "expected": expected_text(f), "source": f.source,
            "reason": f.reason, "tool_says": f.detail, **f.identity()}


def evidence(analysis: Analysis, records: Sequence[Mapping[str, Any]], part: Part, *,
             runs: Sequence[Path] = (), db: Path | None = None,
             now: datetime | None = None) -> dict[str, Any]:
    """The evidence document for ``part`` (what evidence.json holds)."""
    mine = [r for r in records if part.owns(r["node"], r.get("gpu"))]
    if not mine:
        raise InputError(f"{part.label}: no readings of this part in "
                         + ", ".join(analysis.inputs or ["the input"]),
                         hint="name a node (and GPU) that the run measured")
    ident = _identity(mine, part)
    failing = [f for f in analysis.findings if _matches(f, part)]
    words = [str(ident.get(k)) for k in ("bus_id", "uuid", "serial") if ident.get(k)]
    words += [f.detail[:60] for f in failing if f.detail]
    return {
        "schema_version": SCHEMA_VERSION,
        "generated": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": f"forge {__version__}",
        "part": ident,
        "verdict": "fail" if any(analysis.is_failing(f) for f in failing) else
                   ("warn" if failing else "pass"),
        "findings": [_finding(f) for f in failing],
        "readings": [dict(r) for r in mine],
        "excerpts": _excerpts(runs, part, words),
        "history": _history(db, part, ident),
        "next_commands": next_commands(part, ident.get("bus_id")),
        "inputs": list(analysis.inputs),
    }


def readme(doc: Mapping[str, Any]) -> str:
    p = doc["part"]
    lines = [f"forge RMA evidence: {p['node']}" + (f" GPU {p['gpu']}" if p.get("gpu") is not None
                                                  else ""),
             f"generated {doc['generated']} by {doc['generator']} from "
             + ", ".join(doc["inputs"]), "", "Part identity:"]
    lines += [f"  {k}: {v}" for k, v in p.items() if v is not None]
    lines += ["", f"Verdict: {doc['verdict'].upper()}", "", "Failing and suspect readings:"]
    for f in doc["findings"] or [{"where": "-", "metric": "none", "measured": "", "expected": "",
                                  "reason": "no finding on this part", "source": None,
                                  "tool_says": None}]:
        lines.append(f"  {f['where']} {f['metric']}: {f['measured']} (expected {f['expected']})")
        lines.append(f"    why: {f['reason']}")
        if f.get("source"):
            lines.append(f"    limit source: {f['source']}")
        if f.get("tool_says"):
            lines.append(f"    the tool said: {f['tool_says']}")
    if doc["excerpts"]:
        lines += ["", "Raw output excerpts (raw/ holds them whole):"]
        for e in doc["excerpts"]:
            lines.append(f"  {e['run']}/{e['file']}:")
            lines += [f"    {ln}" for ln in e["lines"][:20]]
    lines += ["", f"History: {len(doc['history'])} earlier readings of this part"
              + (" (history.json)" if doc["history"] else ""), "",
              "Next, as the vendor asks:"]
    lines += [f"  {c['command']}\n      {c['why']}" for c in doc["next_commands"]]
    return "\n".join(lines) + "\n"


def write_bundle(target: Path, doc: Mapping[str, Any], html: str, *, force: bool = False,
                 runs: Sequence[Path] = ()) -> Path:
    """Write the bundle directory atomically: built beside ``target``, renamed into place."""
    target = Path(target)
    if target.exists() and not force:
        raise InputError(f"{target} exists", hint="pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "evidence.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n",
                                           encoding="utf-8")
        (tmp / "README.txt").write_text(readme(doc), encoding="utf-8")
        (tmp / "report.html").write_text(html, encoding="utf-8")
        for e in doc["excerpts"]:
            dest = tmp / "raw" / Path(e["run"]).name / e["file"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(e["run"]) / e["file"], dest)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


__all__ = ["Part", "evidence", "next_commands", "readme", "write_bundle"]
