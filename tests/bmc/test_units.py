"""Pure pieces: parsing, comparison, audit grouping, exit codes, redaction, retries on 503."""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from bmclab import FIXTURES

from provision.bmc.client import classify, normalize_fingerprint, redact
from provision.bmc.compare import model_matches
from provision.bmc.fanout import fan_out
from provision.bmc.inventory import inventory_work, norm_mac
from provision.bmc.model import (
    BmcOptions,
    BmcTarget,
    Credentials,
    Outcome,
    Status,
    Timeouts,
    TlsPolicy,
)
from provision.bmc.report import exit_code
from provision.bmc.targets import split_address
from provision.errors import ExitCode, InputError


def test_split_address_forms():
    assert split_address("10.10.1.5", "x") == ("10.10.1.5", None)
    assert split_address("127.0.0.1:8443", "x") == ("127.0.0.1", 8443)
    assert split_address("[fd00::5]:443", "x") == ("fd00::5", 443)
    assert split_address("fd00::5", "x") == ("fd00::5", None)
    with pytest.raises(InputError, match=r"gpu001\.bmc_address: invalid port"):
        split_address("bmc1:99999", "gpu001.bmc_address")


def test_fingerprint_and_mac_normalisation():
    assert normalize_fingerprint("AB:" * 31 + "AB") == "ab" * 32
    with pytest.raises(InputError, match="pinned_sha256"):
        normalize_fingerprint("abcd")
    assert norm_mac("7C-C2-55-00-03-01") == "7c:c2:55:00:03:01"
    assert norm_mac("00:00:00:00:00:00") is None


def test_model_matching_is_token_ordered():
    assert model_matches("H100 NVL", ["NVIDIA H100 NVL 94GB PCIe"])
    assert not model_matches("H100 NVL", ["NVIDIA H100 PCIe 80GB"])
    assert model_matches("ConnectX-7 NDR200", ["ThinkSystem NVIDIA ConnectX-7 NDR200/HDR"])


def test_exit_code_precedence():
    def o(s: Status) -> Outcome[None]:
        return Outcome("n", "a", s)

    assert exit_code([o(Status.OK)], False) == ExitCode.OK
    assert exit_code([o(Status.OK)], True) == ExitCode.CHECKS_FAILED
    assert exit_code([o(Status.UNREACHABLE), o(Status.OK)], True) == ExitCode.HOSTS_UNREACHABLE
    assert exit_code([o(Status.UNREACHABLE), o(Status.AUTH_FAILED)], True) == ExitCode.BAD_INPUT
    assert exit_code([o(Status.TIMEOUT)], False) == ExitCode.TIMEOUT


def test_exception_messages_are_redacted():
    opts = BmcOptions(Credentials("u", "hunter2-secret"))
    failure = classify(RuntimeError("auth header hunter2-secret rejected"), opts)
    assert "hunter2-secret" not in failure.message and "***" in failure.message
    assert redact("a hunter2-secret b", ("hunter2-secret",)) == "a *** b"
    assert "hunter2-secret" not in repr(opts)


class _Busy(BaseHTTPRequestHandler):
    """Serves the recorded XCC tree, answering 503 to the first request of every path."""

    seen: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        with self.lock:
            self.seen[path] = self.seen.get(path, 0) + 1
            first = self.seen[path] == 1
        if first:
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rel = path.removeprefix("/redfish/v1").lstrip("/")
        f = FIXTURES / "xcc-sr675v3" / rel / "index.json"
        body = f.read_bytes() if f.exists() else json.dumps({"error": "nf"}).encode()
        self.send_response(200 if f.exists() else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_busy_bmc_503_is_retried_until_it_answers(tls):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls.cert, tls.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        opts = BmcOptions(Credentials("u", "p"), tls=TlsPolicy(ca_bundle=str(tls.cert)),
                          timeouts=Timeouts(retry_delay_s=0.05, node_deadline_s=30))
        [out] = fan_out([BmcTarget("gpu001", "127.0.0.1", srv.server_address[1])],
                        inventory_work(opts), opts)
    finally:
        srv.shutdown()
        srv.server_close()
    assert out.status == Status.OK, out.message
    assert out.value is not None and out.value.serial == "J900ABC1"
    assert _Busy.seen["/redfish/v1/Systems/1"] == 2       # one 503, one answer


def test_bios_settings_the_profile_mode_matches_as_a_name_the_baseline_exactly() -> None:
    from provision.bmc.bios import (
        OPERATING_MODE,
        BiosReading,
        attribute_text,
        audit_node,
        wanted_settings,
    )

    wanted = wanted_settings({"Processors_SMTMode": attribute_text(True)},
                             "maximum-efficiency", "sr675v3-h100nvl-ib")
    assert [(w.name, w.value, w.loose) for w in wanted] == [
        ("Processors_SMTMode", "true", False), (OPERATING_MODE, "maximum-efficiency", True)]
    reading = BiosReading("n1", (("Processors_SMTMode", attribute_text(True)),
                                 (OPERATING_MODE, "Maximum_Efficiency")))
    assert [a.state for a in audit_node(reading, wanted)] == ["ok", "ok"]
    off = BiosReading("n1", (("Processors_SMTMode", "True"), (OPERATING_MODE, "CustomMode")))
    assert [a.state for a in audit_node(off, wanted)] == ["differs", "differs"]
    # a baseline that names the mode itself is compared exactly, and the profile's is dropped
    exact = wanted_settings({OPERATING_MODE: "MaximumEfficiency"}, "maximum-efficiency", "p")
    assert [(w.source, w.loose) for w in exact] == [("bmc.bios_baseline", False)]
    assert wanted_settings({}, None, "p") == ()
