"""`forge bmc inventory` over many emulated BMCs: prints the wall time (bar: 64 BMCs < 10 s).

Each BMC is its own sushy-tools emulator process (fake driver, HTTPS with a
self-signed certificate, HTTP basic auth), serving one system, as an XCC
does. Start-up of the emulators is not timed; only the inventory run is.

    .venv/bin/python benchmarks/bmc_bench.py [--bmcs 64] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # provision, when not installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "bmc"))

from bmclab import PASSWORD, _stop, bmc_block, start_emulators, write_spec
from bmclab import tls as _tls_fixture

BAR_S = 10.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bmcs", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bmc-bench-") as tmp:
        os.environ["BMC_BENCH_KEEP"] = tmp
        base = Path(tmp)
        tls = _tls_fixture.__wrapped__(_Factory(base))  # type: ignore[attr-defined]
        names = [f"gpu{i:03d}" for i in range(1, args.bmcs + 1)]
        systems = [{n: f"52:54:00:00:{i // 256:02x}:{i % 256:02x}"} for i, n in
                   enumerate(names, start=1)]
        t0 = time.monotonic()
        ports, procs = start_emulators(base / "sushy", tls, args.bmcs, systems)
        print(f"started {args.bmcs} sushy-emulator processes in {time.monotonic() - t0:.1f} s "
              "(not timed)")
        try:
            nodes = {n: {"bmc_address": f"127.0.0.1:{p}", "macs": {"nic": next(iter(s.values()))}}
                     for n, p, s in zip(names, ports, systems, strict=True)}
            spec = write_spec(base / "site.yaml", nodes, bmc=bmc_block(tls))
            env = {**os.environ, "FORGE_BMC_PASSWORD": PASSWORD}
            argv = [sys.executable, "-m", "provision", "bmc", "inventory", str(spec), "--json",
                    "--concurrency", str(args.concurrency)]
            t0 = time.monotonic()
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            elapsed = time.monotonic() - t0
        finally:
            _stop(procs)
    summary = json.loads(proc.stdout)["summary"] if proc.stdout else {}
    print(f"forge bmc inventory: {args.bmcs} BMCs, concurrency {args.concurrency}: "
          f"{elapsed:.2f} s wall (exit {proc.returncode}, by status {summary.get('by_status')})")
    print(f"bar: < {BAR_S:g} s for 64 BMCs -> {'PASS' if elapsed < BAR_S else 'FAIL'}")
    return 0 if proc.returncode == 0 and elapsed < BAR_S else 1


class _Factory:
    """Stands in for pytest's tmp_path_factory for the certificate fixture."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def mktemp(self, name: str) -> Path:
        d = self.base / name
        d.mkdir(parents=True, exist_ok=True)
        return d


if __name__ == "__main__":
    sys.exit(main())
