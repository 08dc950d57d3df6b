"""Node-side collector: facts from /proc and /sys, tool presence, and named commands, as JSON.

This module runs *on the node* (shipped by :mod:`provision.remote.payload`),
so it imports only the standard library and starts its own subprocesses
(forge is not installed there). It reads its request as JSON from argv[1]
and prints one JSON object; every command's raw output is kept in it, so the
run directory holds what each tool really printed.

Request: ``{"facts": ["cpu", "memory", "rdma", "pci_gpus", "modules"],
"tools": ["nvidia-smi", ...], "commands": {"name": {"argv": [...],
"server": [...] (optional, started first and stopped after), "timeout": 60,
"mpi_singleton": true (optional: an MPI-built program run as one process, outside the job
step's MPI world)}}}``
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
SYS_IB = Path("/sys/class/infiniband")
SYS_PCI = Path("/sys/bus/pci/devices")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_facts() -> dict[str, Any]:
    models = set()
    sockets = set()
    text = _read(Path("/proc/cpuinfo")) or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            models.add(value.strip())
        elif key.strip() == "physical id":
            sockets.add(value.strip())
    try:
        online = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        online = os.cpu_count() or 0
    return {"logical": os.cpu_count() or 0, "online": online, "models": sorted(models),
            "sockets": len(sockets) or None}


def memory_facts() -> dict[str, Any]:
    for line in (_read(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith("MemTotal:"):
            return {"mem_total_kib": int(line.split()[1])}
    return {"mem_total_kib": None}


def _pci(dev: Path) -> dict[str, Any]:
    real = dev.resolve()
    # the device's IOMMU domain: "identity" (passthrough), "DMA"/"DMA-FQ" (translated),
    # None when no IOMMU driver claims it (IOMMU off)
    return {"address": real.name, "numa_node": _read(dev / "numa_node"),
            "iommu_group_type": _read(dev / "iommu_group" / "type"),
            "current_link_speed": _read(dev / "current_link_speed"),
            "max_link_speed": _read(dev / "max_link_speed"),
            "current_link_width": _read(dev / "current_link_width"),
            "max_link_width": _read(dev / "max_link_width"),
            "path": str(real)}


def rdma_facts() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not SYS_IB.is_dir():
        return out
    for dev in sorted(SYS_IB.iterdir()):
        ports = []
        for port in sorted((dev / "ports").glob("*"), key=lambda p: int(p.name)):
            ports.append({"port": int(port.name), "state": _read(port / "state"),
                          "phys_state": _read(port / "phys_state"),
                          "rate": _read(port / "rate"),
                          "link_layer": _read(port / "link_layer")})
        netdevs = sorted(p.name for p in (dev / "device" / "net").glob("*"))
        out.append({"name": dev.name, "fw_ver": _read(dev / "fw_ver"),
                    "board_id": _read(dev / "board_id"), "hca_type": _read(dev / "hca_type"),
                    "ports": ports, "netdevs": netdevs, "pci": _pci(dev / "device")})
    return out


def pci_gpu_facts() -> list[dict[str, Any]]:
    """NVIDIA display/3D controllers on the PCI bus, whether or not a driver sees them."""
    out: list[dict[str, Any]] = []
    if not SYS_PCI.is_dir():
        return out
    for dev in sorted(SYS_PCI.iterdir()):
        if _read(dev / "vendor") != "0x10de":
            continue
        cls = _read(dev / "class") or ""
        if cls.startswith(("0x0300", "0x0302")):
            out.append(_pci(dev))
    return out


def module_facts() -> dict[str, bool]:
    loaded = {line.split()[0] for line in (_read(Path("/proc/modules")) or "").splitlines()
              if line.strip()}
    mods = {m: m in loaded for m in ("nvidia", "nvidia_peermem", "nv_peer_mem", "mlx5_core",
                                     "ib_core", "nvidia_fs")}
    # The open kernel modules name themselves "NVIDIA UNIX Open Kernel Module for <arch>" here,
    # the proprietary ones "NVIDIA UNIX <arch> Kernel Module" (NVIDIA driver README,
    # "Using the NVIDIA Open GPU Kernel Modules"); only the open ones export DMA-BUF.
    version = _read(Path("/proc/driver/nvidia/version")) or ""
    mods["nvidia_open"] = "Open Kernel Module" in version.partition("\n")[0]
    return mods


FACTS = {"cpu": cpu_facts, "memory": memory_facts, "rdma": rdma_facts,
         "pci_gpus": pci_gpu_facts, "modules": module_facts}


#: a job step's variables that make an MPI library take a process for one rank of a job
#: the launcher started: Open MPI 4.x refuses to run a program it finds under srun without
#: PMI ("The application appears to have been direct launched using \"srun\", but OMPI was
#: not built with SLURM's PMI support"), testing SLURM_NODELIST alone (measured with Open MPI
#: 4.1.4 of Debian 12 in the environment of a real srun step; open-mpi/ompi#3778), where
#: Open MPI 5 starts a singleton. Without them it starts a singleton on every version.
JOB_STEP_PREFIXES = ("SLURM_", "PMI_", "PMIX_")


def _start(argv: list[str], env: dict[str, str] | None = None, *,
           singleton: bool = False) -> subprocess.Popen[str]:
    base = dict(os.environ)
    if singleton:
        base = {k: v for k, v in base.items() if not k.startswith(JOB_STEP_PREFIXES)}
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**base, **(env or {})} if env or singleton else None)


def _finish(p: subprocess.Popen[str], timeout: float) -> tuple[int | None, str, str, bool]:
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err, False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, out, err, True


def run_command(spec: dict[str, Any]) -> dict[str, Any]:
    argv = [str(a) for a in spec["argv"]]
    timeout = float(spec.get("timeout", 60))
    result: dict[str, Any] = {"argv": argv, "missing": None}
    server = None
    try:
        if spec.get("server"):
            server = _start([str(a) for a in spec["server"]])
            time.sleep(float(spec.get("server_wait", 1.0)))
        t0 = time.monotonic()
        p = _start(argv, {str(k): str(v) for k, v in (spec.get("env") or {}).items()},
                   singleton=bool(spec.get("mpi_singleton")))
    except FileNotFoundError as exc:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()
        result.update(returncode=None, stdout="", stderr="", timed_out=False,
                      missing=exc.filename or argv[0])
        return result
    rc, out, err, timed_out = _finish(p, timeout)
    result.update(returncode=rc, stdout=out, stderr=err, timed_out=timed_out,
                  seconds=round(time.monotonic() - t0, 3))
    if server is not None:
        src, sout, serr, _ = _finish(server, 10)
        result["server"] = {"returncode": src, "stdout": sout, "stderr": serr}
    return result


def collect(request: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "hostname": socket.gethostname(),
                           "facts": {}, "tools": {}, "commands": {}, "request": request}
    for name in request.get("facts", []):
        out["facts"][name] = FACTS[name]()
    for tool in request.get("tools", []):
        out["tools"][tool] = shutil.which(tool)
    for name, spec in request.get("commands", {}).items():
        out["commands"][name] = run_command(spec)
    return out


def main(argv: list[str]) -> int:
    request = json.loads(argv[1]) if len(argv) > 1 else {"facts": list(FACTS)}
    json.dump(collect(request), sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
