"""Hostile and broken site specs: every one refused with exit 2 and a one-line message naming
the field, quickly, never a traceback; render of a refused spec writes nothing anywhere.

Each case is a mutation of site-specs/small.yaml (the robustness review's
section 1 case classes: traversal and odd names, huge node sets, ports, non-finite and
negative figures, versions, secret references, deep nesting, special files, control
characters), plus the odd-but-valid specs that must still pass."""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fuzz.forgerun import forge, forge_process, snapshot

ROOT = Path(__file__).resolve().parents[2]
SMALL = yaml.safe_load((ROOT / "site-specs" / "small.yaml").read_text())
Doc = dict[str, Any]


def _gpu(doc: Doc) -> Doc:
    group: Doc = doc["node_groups"][1]
    return group


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(key, str) else node[key]
        node[path[-1]] = value
    return mutate


def _custom_without_networks(doc: Doc) -> None:
    doc["cluster"]["size"] = "custom"
    del doc["networks"]


def _profile(field: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        doc["profiles"] = {"bad": {"extends": "sr675v3-h100nvl-ib", field: value}}
        _gpu(doc)["profile"] = "bad"
    return mutate


def _gpu_field(field: str, value: Any) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        doc["profiles"] = {"bad": {"extends": "sr675v3-h100nvl-ib", "gpu": {field: value}}}
        _gpu(doc)["profile"] = "bad"
    return mutate


# id -> (mutation, text the one-line message must contain)
REFUSED: dict[str, tuple[Callable[[Doc], None], str]] = {
    "host-traversal": (_set(("node_groups", 1, "nodes"), "../../../../tmp/pwned"), "host name"),
    "host-slash": (_set(("node_groups", 0, "nodes"), "rack1/head01"), "host name"),
    "host-dot": (_set(("node_groups", 0, "nodes"), "head01.example"), "host name"),
    "host-long": (_set(("node_groups", 0, "nodes"), "h" * 300), "host name"),
    "host-unicode": (_set(("node_groups", 0, "nodes"), "hëad01"), "host name"),
    "huge-nodeset": (_set(("node_groups", 1, "nodes"), "gpu[1-20000000]"), "100,000"),
    "port-99999": (_set(("access", "port"), 99999), "access.port"),
    "port-negative": (_set(("access", "port"), -22), "access.port"),
    "mgmt-ip-badport": (_set(("node_groups", 1, "node_data", "gpu003", "management_ip"),
                              "10.10.0.103:abc"), "invalid port"),
    "ssh-badport": (_set(("node_groups", 1, "node_data", "gpu003", "ssh"), "gpu003:ssh"),
                    "invalid port"),
    "ssh-port-huge": (_set(("node_groups", 1, "node_data", "gpu003", "ssh"),
                           "10.10.0.103:99999"), "outside 1..65535"),
    "cuda-float": (_set(("stack", "versions", "cuda"), 12.10), "quoted string"),
    "cuda-inf": (_set(("stack", "versions", "cuda"), float("inf")), "finite"),
    "burnin-inf": (_set(("acceptance", "burnin_minutes"), float("inf")), "finite"),
    "burnin-nan": (_set(("acceptance", "burnin_minutes"), float("nan")), "finite"),
    "memory-negative": (_profile("memory_gib", -512), "memory_gib"),
    "gpu-memory-negative": (_gpu_field("memory_gb", -94), "memory_gb"),
    "pcie-gen-negative": (_gpu_field("pcie_gen", -5), "pcie_gen"),
    "secret-injection": (_set(("bmc", "password"),
                              {"env": "X') }}{{ lookup('pipe', 'id') }}{{ ('"}),
                         "environment variable name"),
    "secret-file-quote": (_set(("bmc", "password"), {"file": "/tmp/x' }}{{ 7*7"}),
                          "quotes, braces"),
    "except-garbage": (_set(("node_groups", 1, "addresses", "except"), ["banana"]),
                       "not an IP address"),
    "knownhosts-tilde-user": (_set(("access", "known_hosts"), "~nosuchuser-forge/kh"),
                              "nosuchuser-forge"),
    "custom-no-networks": (_custom_without_networks, "networks"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_mutated_spec_is_refused_with_the_field_named(case: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    mutate, names = REFUSED[case]
    doc = copy.deepcopy(SMALL)
    mutate(doc)
    spec = tmp_path / "site.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    started = time.monotonic()
    forge("validate", spec, capsys=capsys).assert_refused(2, names=names)
    assert time.monotonic() - started < 10, "refusing a bad spec must be quick"
    before = snapshot(tmp_path)
    forge("render", spec, "-o", tmp_path / "out", capsys=capsys).assert_refused(2, names=names)
    assert snapshot(tmp_path) == before  # nothing written, not even a staging directory


def _text_case(tmp_path: Path, text: str | bytes) -> Path:
    spec = tmp_path / "site.yaml"
    if isinstance(text, bytes):
        spec.write_bytes(text)
    else:
        spec.write_text(text)
    return spec


SMALL_TEXT = (ROOT / "site-specs" / "small.yaml").read_text()


@pytest.mark.parametrize("levels", [250, 600, 1000, 100_000])
def test_deep_nesting_refused_with_file_name(levels: int, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    spec = _text_case(tmp_path, SMALL_TEXT + "extra: " + "[" * levels + "]" * levels + "\n")
    forge("validate", spec, capsys=capsys).assert_refused(2, names=f"{spec}")


def test_nul_character_located_by_line_and_column(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = _text_case(tmp_path, SMALL_TEXT.replace("ra-small", "ra-\0small"))
    forge("validate", spec, capsys=capsys).assert_refused(2, names=f"{spec}:6:")


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _text_case(tmp_path, SMALL_TEXT.encode() + b"\xff\xfe\n")
    forge("validate", spec, capsys=capsys).assert_refused(2, names="UTF-8")
    forge("migrate", spec, "-o", tmp_path / "new.yaml", capsys=capsys).assert_refused(2)


def test_fifo_as_spec_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    done = threading.Event()
    timer = threading.Timer(15, lambda: None if done.is_set() else os.open(fifo, os.O_WRONLY))
    timer.start()  # unblocks a reader that would hang, so a regression fails instead of hanging
    try:
        started = time.monotonic()
        forge("validate", fifo, capsys=capsys).assert_refused(2, names="named pipe")
        assert time.monotonic() - started < 5
    finally:
        done.set()
        timer.cancel()


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom", "/dev/null"])
def test_device_as_spec_refused(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    forge("validate", device, capsys=capsys).assert_refused(2, names="character device")


def test_missing_and_directory_specs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forge("validate", tmp_path / "nope.yaml", capsys=capsys).assert_refused(2, names="nope.yaml")
    forge("migrate", tmp_path / "nope.yaml", "-o", tmp_path / "n.yaml",
          capsys=capsys).assert_refused(2, names="nope.yaml")


ACCEPTED = {
    "bom": "\ufeff" + SMALL_TEXT,
    "crlf": SMALL_TEXT.replace("\n", "\r\n"),
    "anchors": SMALL_TEXT.replace("roles: [compute]", "roles: &r [compute]"),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_valid_specs_pass(case: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    forge("validate", _text_case(tmp_path, ACCEPTED[case]), capsys=capsys).assert_ok()


def test_spec_from_stdin(tmp_path: Path) -> None:
    run = forge_process("validate", "-", stdin=SMALL_TEXT, cwd=tmp_path)
    run.assert_ok()
    assert "ra-small" in run.out
