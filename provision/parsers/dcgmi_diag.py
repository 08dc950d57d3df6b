"""``dcgmi diag -r N`` output: the text table (DCGM 2.x and 3.x) and ``-j`` JSON (3.x and 4.x).

Text: section dividers name the category (Metadata, Deployment,
Integration, Hardware, Stress); a row with an empty first cell continues the
row above (DCGM wraps long messages at a fixed width, splitting words);
``Warning`` / ``Error`` / ``Info`` rows attach to the test above them, an
``Error`` row without one is a failure of its category. ``Fail - GPU: 0, 2``
names the failing GPUs. JSON: both the 3.x ``"DCGM GPU Diagnostic" ->
test_categories`` shape and the 4.x top-level ``tests`` with ``entity_id``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from provision.measurement import Measurement
from provision.parsers.base import parse_error, record, require_text, resolve_node

TOOL = "dcgmi-diag"
_DIVIDER = re.compile(r"^[+|]-+\s+(\w[\w ]*?)\s+-+[+|]")
_STATUS = {"pass": "pass", "passed": "pass", "fail": "fail", "failed": "fail", "error": "fail",
           "warn": "warn", "warning": "warn", "skip": "skip", "skipped": "skip",
           "not run": "skip", "not_run": "skip"}
_NOTE_ROWS = ("warning", "error", "info")


@dataclass(frozen=True)
class DcgmTest:
    category: str
    name: str
    status: str  # pass, fail, warn, skip
    gpus: tuple[int, ...] | None  # None: the result is for all GPUs of the run
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class DcgmDiagResult:
    node: str
    form: str  # "text" or "json"
    version: str | None
    driver_version: str | None
    gpu_device_ids: tuple[str, ...]
    tests: tuple[DcgmTest, ...] = field(default=())

    @property
    def failed(self) -> tuple[DcgmTest, ...]:
        return tuple(t for t in self.tests if t.status == "fail")


def detect(text: str) -> bool:
    return bool(re.search(r"\|\s*Diagnostic\s*\|\s*Result\s*\||DCGM GPU Diagnostic|"
                          r"^[+|]-{3,}\s+(?:Deployment|Integration|Hardware|Stress|Metadata)\s+-",
                          text, re.M)) or ('"test_categories"' in text)


def parse(text: str, *, node: str | None = None,
          source_name: str = "<stdin>") -> DcgmDiagResult:
    lines = require_text(TOOL, text, source_name)
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("{")), None)
    if start is not None and not any(ln.lstrip().startswith("|") for ln in lines[:start]):
        return _parse_json(lines, start, node, source_name)
    return _parse_text(lines, node, source_name)


def _status(cell: str) -> tuple[str, tuple[int, ...] | None] | None:
    """``'Fail - GPU: 0, 2'`` -> ``('fail', (0, 2))``; ``'Pass - All'`` -> ``('pass', None)``."""
    m = re.match(r"(Pass|Fail|Warn|Skip|Error)\b(?:\s*-\s*(.*))?$", cell.strip(), re.I)
    if not m:
        return None
    rest = (m[2] or "").strip()
    ids = re.match(r"GPUs?:?\s*([\d,\s]+)$", rest)
    gpus = tuple(int(x) for x in re.findall(r"\d+", ids[1])) if ids else None
    return _STATUS[m[1].lower()], gpus


def _join(prev: str, cell: str) -> str:
    """Rejoin a message DCGM wrapped at a fixed width, possibly inside a word."""
    body = cell[1:] if cell.startswith(" ") else cell
    chunk = body.strip()
    if not prev:
        return chunk
    if re.search(r"[A-Za-z]$", prev) and re.match(r"[a-z]", body):
        return prev + chunk
    return f"{prev} {chunk}"


def _parse_text(lines: list[str], node: str | None, source: str) -> DcgmDiagResult:
    category = ""
    meta: dict[str, str] = {}
    rows: list[dict[str, Any]] = []  # name, category, status, gpus, text, messages
    seen_table = False
    for raw in lines:
        ln = raw.strip()
        if not ln or ln in ("...", "[...]") or ln.startswith("Successfully ran"):
            continue
        if m := _DIVIDER.match(ln):
            category, seen_table = m[1].strip(), True
            continue
        if re.match(r"^\+[-=+]+\+?$", ln):
            seen_table = True
            continue
        if not ln.startswith("|"):
            continue  # a prompt, a warning, another tool's line: not the table's
        cells = ln.strip("|").split("|") if ln.endswith("|") else ln[1:].split("|")
        if len(cells) < 2:
            continue  # a row cut by the paste
        name, value = cells[0].strip(), cells[1]
        if name == "Diagnostic" and value.strip() == "Result":
            continue
        if category == "Metadata":
            meta[name] = value.strip()
            continue
        if not name:  # continuation of the row above
            if not rows:
                continue  # a fragment that starts inside a wrapped message
            st = _status(value)
            last = rows[-1]
            if st and last["kind"] == "test":  # a second status line: 'Fail - GPU: 2'
                rows.append({**last, "status": st[0], "gpus": st[1], "messages": []})
            else:
                target = last["messages"] if last["messages"] else None
                if target is not None:
                    target[-1] = _join(target[-1], value)
                else:
                    last["messages"].append(_join("", value))
            continue
        if name.lower() in _NOTE_ROWS:
            owner = rows[-1] if rows and rows[-1]["category"] == category else None
            if name.lower() == "error" and (owner is None or owner["kind"] == "note"):
                rows.append({"kind": "note", "name": f"{category} error", "category": category,
                             "status": "fail", "gpus": None, "messages": [_join("", value)]})
            elif owner is not None:
                owner["messages"].append(_join("", value))
                if name.lower() == "error":
                    owner["status"] = "fail"
            continue
        st = _status(value)
        if st is None:
            continue  # not a result row (a wrapped header, a newer row kind): not guessed
        rows.append({"kind": "test", "name": name, "category": category, "status": st[0],
                     "gpus": st[1], "messages": []})
    if not seen_table:
        raise parse_error(TOOL, source, 1, "no dcgmi diag table found")
    if not rows:
        raise parse_error(TOOL, source, len(lines), "the table has no test rows (truncated?)")
    for r in rows:  # 'Error: GPU 3 has ...' names the GPU even when the status cell does not
        if r["gpus"] is None and r["kind"] == "note":
            named = re.findall(r"\bGPU (\d+)\b", " ".join(r["messages"]))
            r["gpus"] = tuple(sorted({int(x) for x in named})) or None
    tests = tuple(DcgmTest(r["category"], r["name"], r["status"], r["gpus"],
                           tuple(r["messages"])) for r in rows)
    ids = tuple(x.strip() for x in meta.get("GPU Device IDs Detected", "").split(",") if x.strip())
    return DcgmDiagResult(resolve_node(TOOL, source, None, node), "text",
                          meta.get("DCGM Version"), meta.get("Driver Version Detected"), ids, tests)


def _messages(entry: dict[str, Any]) -> tuple[str, ...]:
    out: list[str] = []
    for key in ("warnings", "warning", "errors", "info"):
        v = entry.get(key)
        for item in v if isinstance(v, list) else [v] if v else []:
            if isinstance(item, dict):
                item = item.get("warning") or item.get("message") or item.get("error") or item
            out.append(str(item))
    return tuple(out)


def _gpus(entry: dict[str, Any]) -> tuple[int, ...] | None:
    if "entity_id" in entry and str(entry.get("entity_group", "GPU")).upper() == "GPU":
        return (int(entry["entity_id"]),)
    raw = entry.get("gpu_ids", entry.get("gpu_id"))
    if raw is None or raw == "":
        return None
    return tuple(int(x) for x in re.findall(r"\d+", str(raw)))


def _parse_json(lines: list[str], start: int, node: str | None, source: str) -> DcgmDiagResult:
    body = "\n".join(lines[start:])
    try:
        doc, _ = json.JSONDecoder().raw_decode(body.lstrip())
    except json.JSONDecodeError as exc:
        raise parse_error(TOOL, source, start + exc.lineno, f"invalid JSON ({exc.msg})") from None
    if not isinstance(doc, dict):
        raise parse_error(TOOL, source, start + 1, "JSON is not an object")
    root = doc.get("DCGM GPU Diagnostic") or doc.get("DCGM Diagnostic") or doc
    groups: list[tuple[str, list[Any]]] = []
    for cat in root.get("test_categories") or []:
        if isinstance(cat, dict):
            groups.append((str(cat.get("category", "")), cat.get("tests") or []))
    if isinstance(root.get("tests"), list):
        groups.append(("", root["tests"]))
    tests: list[DcgmTest] = []
    for category, items in groups:
        for t in items:
            if not isinstance(t, dict):
                continue  # DCGM 3.x writes null entries between tests
            for entry in t.get("results") or []:
                if not isinstance(entry, dict):
                    continue
                status = _STATUS.get(str(entry.get("status", "")).strip().lower(), "fail")
                tests.append(DcgmTest(category or str(t.get("category", "")), str(t.get("name")),
                                      status, _gpus(entry), _messages(entry)))
    errors = [str(e) for e in (doc.get("runtime_error"), root.get("runtime_error")) if e]
    for err in errors:
        tests.append(DcgmTest("", "runtime error", "fail", None, (err,)))
    if not tests:
        raise parse_error(TOOL, source, start + 1, "JSON has no test results")
    ver = root.get("version") or doc.get("version")
    drv = root.get("driver_version_detected") or root.get("driver_version") or doc.get(
        "driver_version")
    return DcgmDiagResult(resolve_node(TOOL, source, None, node), "json",
                          str(ver) if ver else None, str(drv) if drv else None, (), tuple(tests))


def measurements(result: DcgmDiagResult, check: str | None = None) -> list[Measurement]:
    """One dcgm_test_pass per test (per named GPU); skipped tests yield no record."""
    check = check or TOOL
    out: list[Measurement] = []
    for t in result.tests:
        if t.status == "skip":
            continue
        value = 0 if t.status == "fail" else 1
        detail = f"{t.category}/{t.name}: {t.status}" if t.category else f"{t.name}: {t.status}"
        if t.messages:
            detail += " - " + " | ".join(t.messages)
        for gpu in t.gpus or (None,):
            out.append(record(result.node, "dcgm_test_pass", value, gpu=gpu, check=check, min=1.0,
                              detail=detail[:400]))
            for m in _PCIE_FIGURE.finditer(" ".join(t.messages)):
                metric = "dcgm_pcie_bandwidth" if m[2] == "bandwidth" else "dcgm_pcie_latency"
                out.append(record(result.node, metric, float(m[3]), gpu=gpu, check=check,
                                  detail=f"{t.name}: {m[1]} {m[2]}"))
    return out


# the PCIe test's info text: 'GPU 0 GPU 0 GPU to Host bandwidth:<TAB><TAB>13.15 GB/s, ...'
_PCIE_FIGURE = re.compile(r"(GPU to Host|Host to GPU|bidirectional) (bandwidth|latency):"
                          r"\s*([\d.]+) (?:GB/s|us)")
