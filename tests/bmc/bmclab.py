"""Real Redfish services on loopback for the BMC tests (fixtures and helpers).

- sushy-tools' ``sushy-emulator`` (fake driver, HTTPS with a self-signed
  certificate, HTTP basic auth from a bcrypt htpasswd file): one process per
  emulated BMC, each serving the three lab systems; forge picks a node's
  system by name, as it would behind an enclosure manager.
- sushy-tools' ``sushy-static`` serving the recorded XCC documents in
  ``fixtures/xcc-sr675v3`` (what the emulator lacks: firmware inventory,
  PCIe devices, network adapters).
- a dead BMC (a loopback port nothing listens on) and a hung one (a socket
  that accepts and never answers).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from provision.cli.main import main

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).parent / "fixtures"
USER = "forgeadmin"
PASSWORD = "Xq7-unique-BMC-pw-4242"          # searched for in every output
SYSTEMS = {"n1": "52:54:00:00:00:01", "n2": "52:54:00:00:00:02", "n3": "52:54:00:00:00:03"}

pytestmark = pytest.mark.skipif(not (BIN / "sushy-emulator").exists(),
                                reason="sushy-tools is not installed in this environment")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Tls:
    cert: Path
    key: Path
    sha256: str


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    d = tmp_path_factory.mktemp("tls")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "bmc.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "bmc.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return Tls(d / "bmc.crt", d / "bmc.key", fp)


def _wait_ready(url: str, ca: Path, proc: subprocess.Popen[bytes], what: str,
                timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = Path(str(getattr(proc, "log_path", "")))
            tail = log.read_text(errors="replace")[-600:] if log.is_file() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {tail}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, verify=str(ca), timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on {url}")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def emulator_config(path: Path, state: Path, auth_file: Path, tls: Tls,
                    systems: dict[str, str]) -> None:
    fake = [{"uuid": f"8a3c1f0e-0000-4000-8000-{i:012d}", "name": name, "power_state": "Off",
             "external_notifier": False, "nics": [{"mac": mac, "ip": "127.0.0.1"}]}
            for i, (name, mac) in enumerate(sorted(systems.items()), start=1)]
    path.write_text("\n".join([
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'",
        "SUSHY_EMULATOR_FAKE_DRIVER = True",
        f"SUSHY_EMULATOR_STATE_DIR = {str(state)!r}",
        "SUSHY_EMULATOR_VMEDIA_VERIFY_SSL = False",
        f"SUSHY_EMULATOR_AUTH_FILE = {str(auth_file)!r}",
        f"SUSHY_EMULATOR_SSL_CERT = {str(tls.cert)!r}",
        f"SUSHY_EMULATOR_SSL_KEY = {str(tls.key)!r}",
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(fake).replace('false', 'False')}",
    ]) + "\n")


def start_emulators(base: Path, tls: Tls, count: int,
                    systems: dict[str, str] | list[dict[str, str]],
                    ) -> tuple[list[int], list[subprocess.Popen[bytes]]]:
    """``count`` sushy-emulator processes, each one BMC address serving ``systems``
    (the same for all, or one dict per process)."""
    base.mkdir(parents=True, exist_ok=True)
    auth = base / "htpasswd"
    auth.write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()}\n")
    ports, procs = [], []
    for i in range(count):
        conf = base / f"emulator{i}.conf"
        emulator_config(conf, base / f"state{i}", auth, tls,
                        systems[i] if isinstance(systems, list) else systems)
        port = free_port()
        log = (base / f"emulator{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [str(BIN / "sushy-emulator"), "--config", str(conf), "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT))
        procs[-1].log_path = base / f"emulator{i}.log"  # type: ignore[attr-defined]
        ports.append(port)
    try:
        for port, proc in zip(ports, procs, strict=True):
            # all start at once: on a small machine the last may need a second each
            _wait_ready(f"https://127.0.0.1:{port}/redfish/v1/", tls.cert, proc,
                        "sushy-emulator", timeout=max(20.0, 2.0 * count))
    except Exception:
        _stop(procs)
        raise
    return ports, procs


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[dict[str, int]]:
    """node name -> port of its emulated BMC."""
    ports, procs = start_emulators(tmp_path_factory.mktemp("sushy"), tls, len(SYSTEMS), SYSTEMS)
    yield dict(zip(sorted(SYSTEMS), ports, strict=True))
    _stop(procs)


@pytest.fixture(scope="session")
def iso_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("iso")
    (d / "installer.iso").write_bytes(b"\0" * 4096)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                             "--directory", str(d), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/installer.iso"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=1).ok:
                break
        time.sleep(0.1)
    yield url
    _stop([proc])


@pytest.fixture()
def dead_port() -> int:
    return free_port()            # bound, then closed: nothing listens there


@pytest.fixture()
def hung_port() -> Iterator[int]:
    """Accepts TCP connections and never sends a byte."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = srv.accept()
                held.append(conn)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


def xcc_tree(dest: Path, *, serial: str | None = None, vbios_slot7: str | None = None,
             hostname: str | None = None, bios: dict[str, str] | None = None,
             bios_pending: dict[str, str] | None = None) -> Path:
    """A copy of the recorded XCC tree, optionally with one recorded value changed."""
    shutil.copytree(FIXTURES / "xcc-sr675v3", dest)

    def patch(rel: str, **changes: object) -> None:
        f = dest / rel / "index.json"
        doc = json.loads(f.read_text())
        doc.update(changes)
        f.write_text(json.dumps(doc, indent=2))

    if serial:
        patch("Systems/1", SerialNumber=serial)
    if hostname:
        patch("Systems/1", HostName=hostname)
    if vbios_slot7:
        patch("Chassis/1/PCIeDevices/slot_7", FirmwareVersion=vbios_slot7)
    # a changed setting shows in both (nothing staged), a staged one in Pending only
    for rel, changed in (("Systems/1/Bios", bios), ("Systems/1/Bios/Pending",
                                                    {**(bios or {}), **(bios_pending or {})})):
        if changed:
            attrs = json.loads((dest / rel / "index.json").read_text())["Attributes"]
            patch(rel, Attributes={**attrs, **changed})
    return dest


@contextlib.contextmanager
def serve_static(trees: dict[str, Path], tls: Tls) -> Iterator[dict[str, int]]:
    """One sushy-static per tree on a free loopback port: node -> port."""
    ports, procs = {}, []
    for node, tree in trees.items():
        port = free_port()
        procs.append(subprocess.Popen(
            [str(BIN / "sushy-static"), "-i", "127.0.0.1", "-p", str(port), "-m", str(tree),
             "-c", str(tls.cert), "-k", str(tls.key)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports[node] = port
    try:
        for (_node, port), proc in zip(ports.items(), procs, strict=True):
            _wait_ready(f"https://127.0.0.1:{port}/redfish/v1/", tls.cert, proc, "sushy-static")
        yield ports
    finally:
        _stop(procs)


@pytest.fixture(scope="session")
def xcc(tmp_path_factory: pytest.TempPathFactory, tls: Tls) -> Iterator[dict[str, int]]:
    """gpu001: the recording as is; gpu002: same, one GPU on another VBIOS, another serial,
    the other operating mode and a BIOS change staged for its next boot."""
    base = tmp_path_factory.mktemp("xcc")
    trees = {"gpu001": xcc_tree(base / "gpu001"),
             "gpu002": xcc_tree(base / "gpu002", serial="J900ABC2", vbios_slot7="96.00.74.00.0D",
                                hostname="gpu002",
                                bios={"OperatingModes_ChooseOperatingMode": "MaximumPerformance"},
                                bios_pending={"DevicesandIOPorts_Device_Slot6": "Disable"})}
    with serve_static(trees, tls) as ports:
        yield ports


def write_spec(path: Path, nodes: dict[str, dict[str, object]], *, bmc: str,
               profile: str = "sr675v3-h100nvl-ib") -> Path:
    """A site spec: ``nodes`` maps name -> node_data (bmc_address, macs, serial)."""
    names = ",".join(nodes)
    first = next(iter(nodes))
    nodes = {n: ({**d, "roles": ["controller", "compute"]} if n == first else d)
             for n, d in nodes.items()}
    node_data = "\n".join(f"      {n}: {json.dumps(d)}" for n, d in nodes.items())
    path.write_text(f"""\
spec_version: 1
cluster: {{name: bmctest, domain: bmc.internal}}
networks:
  management: {{subnet: 10.89.0.0/24}}
  fabric: {{type: infiniband, rails: [{{name: rail0, subnet: 10.20.0.0/24}}]}}
node_groups:
  - name: gpu
    nodes: "{names}"
    roles: [compute]
    profile: {profile}
    rack: r1
    addresses: {{management: 10.89.0.11, fabric: 11}}
    node_data:
{node_data}
stack: {{scheduler: slurm}}
bmc:
{bmc}
""")
    return path


def bmc_block(tls: Tls, *, extra: str = "", ca: bool = True) -> str:
    lines = [f"  username: {USER}", "  password: {env: FORGE_BMC_PASSWORD}"]
    if ca:
        lines.append(f"  ca_bundle: {tls.cert}")
    return "\n".join(lines) + ("\n" + extra if extra else "")


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


@pytest.fixture()
def forge(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the real CLI entry point (the error boundary included) in process."""
    monkeypatch.setenv("FORGE_BMC_PASSWORD", PASSWORD)

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            rc = 0
        except SystemExit as exc:
            rc = int(exc.code or 0)
        out, err = capsys.readouterr()
        assert PASSWORD not in out and PASSWORD not in err, "password leaked into output"
        return Result(rc, out, err)

    return run


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
