"""Every `forge bmc` command against sushy-tools' emulator on loopback (HTTPS + basic auth)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from bmclab import PASSWORD, SYSTEMS, Tls, bmc_block, write_spec


def spec_for(tmp_path: Path, emulators: dict[str, int], tls: Tls, *, extra: str = "",
             ca: bool = True, macs: dict[str, str] | None = None,
             more: dict[str, dict[str, object]] | None = None) -> Path:
    macs = {**SYSTEMS, **(macs or {})}
    nodes: dict[str, dict[str, object]] = {
        n: {"bmc_address": f"127.0.0.1:{emulators[n]}", "macs": {"nic": macs[n]}}
        for n in sorted(SYSTEMS)}
    nodes.update(more or {})
    return write_spec(tmp_path / "site.yaml", nodes, bmc=bmc_block(tls, extra=extra, ca=ca))


def test_inventory_matches_spec(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    r = forge("bmc", "inventory", str(spec), "--json")
    doc = json.loads(r.out)
    assert doc["summary"]["by_status"] == {"ok": 3}
    inv = doc["nodes"]["n2"]["inventory"]
    assert inv["manufacturer"] == "Sushy Emulator"
    assert inv["bmc_version"] == "1.00"
    assert [n["mac"] for n in inv["nics"]] == ["52:54:00:00:00:02"]
    # the emulator has no PCIe or adapter inventory: unverified, not a pass nor a mismatch
    fields = {f["field"]: f["severity"] for f in doc["nodes"]["n2"]["findings"]}
    assert fields == {"gpu_count": "unverified", "nic_count:ConnectX-7 NDR200": "unverified"}
    assert r.rc == 0, r.err


def test_mac_mismatch_is_reported_with_exit_1(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls, macs={"n3": "52:54:00:00:00:99"})
    r = forge("bmc", "inventory", str(spec))
    assert r.rc == 1
    assert "n3: mac:nic: expected 52:54:00:00:00:99, BMC reports not among 52:54:00:00:00:03" \
        in r.out
    assert r.out.startswith("n[1-3]: Sushy Emulator, power") and "1 mismatches" in r.err


def test_strict_turns_unverified_into_mismatch(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    assert forge("bmc", "inventory", str(spec), "--nodes", "n1", "--strict").rc == 1


def test_dead_and_hung_bmcs_are_unreachable_and_the_rest_finishes(
        tmp_path, emulators, tls, forge, dead_port, hung_port):
    spec = spec_for(tmp_path, emulators, tls, more={
        "dead": {"bmc_address": f"127.0.0.1:{dead_port}"},
        "hung": {"bmc_address": f"127.0.0.1:{hung_port}"}})
    start = time.monotonic()
    r = forge("bmc", "inventory", str(spec), "--json", "--timeout", "3")
    elapsed = time.monotonic() - start
    doc = json.loads(r.out)
    status = {n: v["status"] for n, v in doc["nodes"].items()}
    assert status == {"n1": "ok", "n2": "ok", "n3": "ok", "dead": "unreachable",
                      "hung": "unreachable"}
    assert "refused" in doc["nodes"]["dead"]["message"]
    # the deadline, plus at most the one retry pause sushy sleeps through
    assert doc["nodes"]["hung"]["elapsed_s"] <= 3 + 1.5
    assert elapsed < 8, "a hung BMC held the run past its deadline"
    assert r.rc == 4
    assert "unreachable: dead,hung" in r.err


def test_wrong_password_exit_2_and_never_printed(tmp_path, emulators, tls, forge, monkeypatch):
    spec = spec_for(tmp_path, emulators, tls)
    monkeypatch.setenv("FORGE_BMC_PASSWORD", "wrong-" + PASSWORD)
    r = forge("bmc", "inventory", str(spec), "--json")
    doc = json.loads(r.out)
    assert {v["status"] for v in doc["nodes"].values()} == {"auth_failed"}
    assert r.rc == 2
    assert "auth_failed: n[1-3]" in r.err and "bmc.username" in r.err
    assert "rejected the credentials" in r.out and "wrong-" not in r.out + r.err


def test_unset_password_is_bad_input(tmp_path, emulators, tls, forge, monkeypatch):
    spec = spec_for(tmp_path, emulators, tls)
    monkeypatch.delenv("FORGE_BMC_PASSWORD")
    r = forge("bmc", "power", str(spec), "status")
    assert r.rc == 2 and "FORGE_BMC_PASSWORD" in r.err and "Traceback" not in r.err


def test_tls_untrusted_without_ca_then_pin_and_insecure(tmp_path, emulators, tls, forge):
    plain = spec_for(tmp_path, emulators, tls, ca=False)
    r = forge("bmc", "power", str(plain), "status", "--nodes", "n1")
    assert r.rc == 2 and "tls_failed" in r.err and "certificate not trusted" in r.out
    assert forge("bmc", "power", str(plain), "status", "--nodes", "n1", "--insecure").rc == 0
    pinned = spec_for(tmp_path, emulators, tls, ca=False,
                      extra=f"  pinned_sha256: \"{tls.sha256.upper()}\"")
    assert forge("bmc", "power", str(pinned), "status", "--nodes", "n1").rc == 0
    wrong = spec_for(tmp_path, emulators, tls, ca=False, extra=f"  pinned_sha256: {'ab' * 32}")
    r = forge("bmc", "power", str(wrong), "status", "--nodes", "n1")
    assert r.rc == 2 and "fingerprint" in r.out


def test_power_on_off_wait_for_the_new_state(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    sel = ("--nodes", "n[1-2]", "--json", "--timeout", "30")
    r = forge("bmc", "power", str(spec), "on", *sel)
    assert r.rc == 0, r.out
    assert {v["result"]["state"] for v in json.loads(r.out)["nodes"].values()} == {"On"}
    r = forge("bmc", "power", str(spec), "status", *sel)
    assert {v["result"]["state"] for v in json.loads(r.out)["nodes"].values()} == {"On"}
    r = forge("bmc", "power", str(spec), "off", *sel)
    assert r.rc == 0
    r = forge("bmc", "power", str(spec), "status", "--nodes", "n[1-2]")
    assert r.out.strip() == "n[1-2]: Off (unchanged)"


def test_boot_override_once_reports_what_the_bmc_stores(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    r = forge("bmc", "boot", str(spec), "pxe", "--once", "--nodes", "n3")
    assert r.rc == 0
    # sushy-tools accepts Once but reports Continuous: said, not hidden
    assert r.out.strip() == "n3: Pxe (Continuous); requested Once, BMC reports Continuous"
    r = forge("bmc", "boot", str(spec), "disk", "--nodes", "n3")
    assert r.out.strip() == "n3: Hdd (Continuous)"


def test_virtual_media_insert_and_eject(tmp_path, emulators, tls, forge, iso_url):
    spec = spec_for(tmp_path, emulators, tls)
    r = forge("bmc", "media", str(spec), "insert", iso_url, "--nodes", "n1")
    assert r.rc == 0 and r.out.strip() == f"n1: inserted {iso_url}"
    r = forge("bmc", "media", str(spec), "insert", iso_url, "--nodes", "n1")
    assert "(unchanged)" in r.out
    r = forge("bmc", "media", str(spec), "eject", "--nodes", "n1")
    assert r.out.strip() == f"n1: empty; ejected {iso_url}"


def test_media_rejects_a_non_http_url(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    r = forge("bmc", "media", str(spec), "insert", "/tmp/x.iso")
    assert r.rc == 2 and "image URL" in r.err


def test_write_macs_file_and_refuse_overwrite(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    out = tmp_path / "macs.yaml"
    assert forge("bmc", "inventory", str(spec), "--write-macs", str(out)).rc == 0
    doc = yaml.safe_load(out.read_text())
    assert doc["node_data"]["n2"]["macs"] == {"eth0": "52:54:00:00:00:02"}
    r = forge("bmc", "inventory", str(spec), "--write-macs", str(out))
    assert r.rc == 2 and "not overwriting" in r.err


def test_update_spec_adds_missing_macs_and_keeps_a_backup(tmp_path, emulators, tls, forge):
    spec = spec_for(tmp_path, emulators, tls)
    text = spec.read_text().replace(', "macs": {"nic": "52:54:00:00:00:01"}', "")
    spec.write_text(text)
    r = forge("bmc", "inventory", str(spec), "--update-spec")
    assert r.rc == 0 and "added 1 MACs" in r.out
    backups = list(tmp_path.glob("site.yaml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == text
    doc = yaml.safe_load(spec.read_text())
    assert doc["node_groups"][0]["node_data"]["n1"]["macs"] == {"eth0": "52:54:00:00:00:01"}
    r = forge("bmc", "inventory", str(spec), "--update-spec")
    assert "not changed" in r.out and len(list(tmp_path.glob("site.yaml.bak-*"))) == 1


def test_no_output_or_file_contains_the_password(tmp_path, emulators, tls, forge, iso_url):
    spec = spec_for(tmp_path, emulators, tls)
    macs = tmp_path / "m.yaml"
    for args in (("inventory", "--json", "--write-macs", str(macs)), ("firmware",),
                 ("power", "status", "--json"), ("boot", "pxe"),
                 ("media", "insert", iso_url, "--json"), ("media", "eject")):
        forge("bmc", args[0], str(spec), *args[1:])      # the fixture asserts on stdout/stderr
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert PASSWORD not in f.read_text(errors="replace"), f


@pytest.mark.parametrize("bad", ["verify_tls: false", "scheme: http"])
def test_insecure_settings_need_the_flag(tmp_path, emulators, tls, forge, bad):
    spec = spec_for(tmp_path, emulators, tls, extra=f"  {bad}")
    r = forge("bmc", "power", str(spec), "status")
    assert r.rc == 2 and "--insecure" in r.err


def test_bios_audit_of_a_bmc_without_a_bios_resource(tmp_path, emulators, tls, forge):
    """sushy-tools' fake driver serves no BIOS: every setting is unverified, not a pass."""
    spec = spec_for(tmp_path, emulators, tls,
                    extra="  bios_baseline: {Processors_SMTMode: Enabled}")
    r = forge("bmc", "bios", str(spec), "--json")
    doc = json.loads(r.out)
    assert r.rc == 0, r.err
    assert doc["summary"]["by_status"] == {"ok": 3}
    n1 = doc["nodes"]["n1"]
    assert n1["exposed"] is False
    assert {k: v["state"] for k, v in n1["settings"].items()} == {
        "Processors_SMTMode": "unverified", "OperatingModes_ChooseOperatingMode": "unverified"}
    text = forge("bmc", "bios", str(spec), "--nodes", "n1", "--strict")
    assert text.rc == 1 and "1 nodes off the BIOS baseline" in text.err
    assert "n1: Processors_SMTMode: not reported by the BMC (wanted Enabled, " \
        "bmc.bios_baseline)" in text.out.splitlines()
    assert "n1: the BMC exposes no BIOS resource (Systems/<id>/Bios)" in text.out.splitlines()
