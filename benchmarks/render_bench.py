"""Time to validate and render large site specs (targets: 1,024 nodes < 1 s, 10,000 < 5 s).

Run: .venv/bin/python benchmarks/render_bench.py
Prints, per size: load+validate, plan, render (to a fresh directory), and a
no-change re-render, each the best of three runs.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from provision.expectations import plan_site
from provision.inventory import render_inventory
from provision.spec import load_site_text


def spec_text(nodes: int) -> str:
    rails = "\n".join(f"      - {{name: rail{i}, subnet: 10.{64 + i}.0.0/16}}" for i in range(8))
    per_rack = 32
    racks = "\n".join(
        f"      r{r:03d}: \"gpu[{r * per_rack + 1:05d}-{min((r + 1) * per_rack, nodes):05d}]\""
        for r in range((nodes + per_rack - 1) // per_rack))
    return f"""spec_version: 1
cluster: {{name: big, domain: big.example, size: custom}}
networks:
  management: {{subnet: 10.0.0.0/16}}
  bmc: {{subnet: 10.1.0.0/16}}
  fabric:
    type: infiniband
    rails:
{rails}
node_groups:
  - {{name: head, nodes: "head[1-2]", roles: [controller, login], profile: sr650v3-head,
     addresses: {{management: 10.0.0.10, bmc: 10.1.0.10}}}}
  - name: gpu
    nodes: "gpu[00001-{nodes:05d}]"
    roles: [compute]
    profile: sr675v3-h100nvl-ib
    racks:
{racks}
    addresses: {{management: 10.0.1.1, bmc: 10.1.1.1, fabric: 257}}
stack: {{scheduler: slurm}}
"""


def best(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    print(f"{'nodes':>6} {'validate':>9} {'plan':>7} {'render':>8} {'re-render':>10} "
          f"{'validate+render':>16}  target")
    for nodes, target in ((1024, 1.0), (10_000, 5.0)):
        text = spec_text(nodes)
        site = load_site_text(text, "bench.yaml")
        assert len(site.nodes) == nodes + 2
        t_validate = best(lambda text=text: load_site_text(text, "bench.yaml"))
        t_plan = best(lambda site=site: plan_site(site))
        tmp = Path(tempfile.mkdtemp(prefix="forge-render-bench-"))
        try:
            def fresh(site=site, tmp=tmp, text=text) -> None:  # type: ignore[no-untyped-def]
                shutil.rmtree(tmp / "inv", ignore_errors=True)
                render_inventory(site, tmp / "inv", spec_text=text)
            t_render = best(fresh)
            t_rerender = best(lambda site=site, tmp=tmp, text=text: render_inventory(
                site, tmp / "inv",
                                                                          spec_text=text))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        total = t_validate + t_render
        verdict = "ok" if total < target else "MISSED"
        print(f"{nodes:>6} {t_validate:>8.3f}s {t_plan:>6.3f}s {t_render:>7.3f}s "
              f"{t_rerender:>9.3f}s {total:>15.3f}s  < {target:g} s {verdict}")


if __name__ == "__main__":
    main()
