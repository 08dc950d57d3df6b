"""Catalog 2, NVLink topology: exactly the profile's bridged pairs, every link up at full speed.

``nvidia-smi topo -m`` says which GPU pairs are bridged (``NV#``); ``nvidia-smi
nvlink -s`` says the state and speed of every link. A missing, extra or
degraded bridge is named by its GPU pair.
"""

from __future__ import annotations

from typing import Any

from provision import judge
from provision.checks.base import Context, Needs
from provision.checks.collected import Collected, CollectorCheck, command
from provision.checks.reference import annotate, exact, judged, threshold
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.parsers import get as parser

P2P = "p2p:"


class NvlinkTopology(CollectorCheck):
    name = "nvlink"
    description = "NVLink bridges exactly as the profile names them, every link up at full speed"
    tags = ("gpu", "nvlink", "topology")
    needs = Needs(gpu=True, nvlink=True)
    timeout_s = 60.0
    references = ("nvlink_links_up", "nvlink_link_speed", "nvlink_p2p_bandwidth")
    disruptive = True  # nvbandwidth loads the bridges

    def request(self, ctx: Context) -> dict[str, Any]:
        return {"tools": ["nvidia-smi"], "commands": {
            "topo": command(["nvidia-smi", "topo", "-m"]),
            "nvlink": command(["nvidia-smi", "nvlink", "-s"]),
            # replay, recovery and CRC counters since the driver loaded: a marginal
            # bridge shows errors long before a link drops
            "errors": command(["nvidia-smi", "nvlink", "-e"]),
            # P2P bandwidth of each bridge alone (copy engines read across the bridge)
            **{f"{P2P}{a}-{b}": command(["nvbandwidth", "-t", "device_to_device_memcpy_read_ce"],
                                        timeout=180, env={"CUDA_VISIBLE_DEVICES": f"{a},{b}"})
               for a, b in (ctx.plan.nvlink_pairs if ctx.plan else ())}}}

    def sanity(self, data: Collected) -> list[str]:
        missing = [n for n in ("topo", "nvlink") if data.missing(n)]
        if missing:
            return []  # reported as tool_present 0 below
        return [f"nvidia-smi {n} produced no output" for n in ("topo", "nvlink")
                if not (data.output(n) or "").strip()]

    def measurements(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        src = f"profile {plan.profile}: bridged pairs {list(plan.nvlink_pairs)}"
        if data.missing("topo"):
            return [exact(plan, "tool_present", 0, 1, check=self.name, source=src,
                          detail="nvidia-smi: not installed")]
        links_up = threshold(plan, "nvlink_links_up")
        threshold(plan, "nvlink_link_speed")
        topo = parser("nvidia-smi-topo").parse(data.output("topo") or "", node=plan.node,
                                               source_name=f"{plan.node}:topo")
        found = {(a, b): n for a, b, n in topo.nvlink_pairs()}
        want = {tuple(sorted(p)) for p in plan.nvlink_pairs}
        out: list[Measurement] = []
        # a bridge: 3 per pair on H100 NVL, each of 4 links; the pair shows NV<links>
        golden = (plan.golden_fingerprint or {}).get("gpu_gpu") or {}
        for a, b in sorted(want | set(found)):
            n = found.get((a, b), 0)
            expected = (a, b) in want
            # the golden node's count per pair, by equality (a partly seated bridge shows
            # fewer links); without a baseline, at least the profile's count (provisional)
            gold = golden.get(f"GPU{a}-GPU{b}")
            if gold is not None:
                ok = int(expected and f"NV{n}" == gold)
                want_text = f"{gold}, golden node {plan.golden_node}"
            else:
                ok = int(expected and not judge.crosses(links_up.metric, n,
                                                        links_up.figure_value))
                want_text = f"NV{links_up.figure_value:g} or more, provisional"
            what = ("missing" if not n else f"NV{n}") if expected else f"unexpected NV{n}"
            out.append(exact(plan, "nvlink_bridge_ok", ok, 1, check=self.name, source=src,
                             gpu=a, peer=f"{plan.node}:{b}",
                             detail=f"GPU{a}-GPU{b}: {what} (want {want_text})"))
        text = data.output("nvlink") or ""
        result = parser("nvidia-smi-nvlink").parse(text, node=plan.node,
                                                   source_name=f"{plan.node}:nvlink")
        bridged = {g for p in want for g in p}
        recs = [r for r in parser("nvidia-smi-nvlink").measurements(result, check=self.name)
                if r.gpu is None or r.gpu in bridged]
        errors = (data.output("errors") or "").strip()
        if errors:
            res = parser("nvidia-smi-nvlink").parse(errors, node=plan.node,
                                                    source_name=f"{plan.node}:nvlink -e")
            recs += [r for r in parser("nvidia-smi-nvlink").measurements(res, check=self.name)
                     if r.max == 0.0 and r.metric not in ("nvlink_links_down",)
                     and (r.gpu is None or r.gpu in bridged)]
        return out + annotate(plan, recs, self.name) + self._p2p(data, plan)

    def _p2p(self, data: Collected, plan: NodePlan) -> list[Measurement]:
        """nvbandwidth per bridged pair: the slower direction, judged against the bridge."""
        out: list[Measurement] = []
        for name in (n for n in data.commands if n.startswith(P2P)):
            pair = name[len(P2P):]
            if data.missing(name):
                out.append(exact(plan, "tool_present", 0, 1, check=self.name,
                                 source="nvbandwidth measures NVLink P2P bandwidth",
                                 detail=f"nvbandwidth: not installed ({pair})"))
                continue
            res = parser("nvbandwidth").parse(data.output(name) or "", node=plan.node,
                                              source_name=f"{plan.node}:{name}")
            cells = [r.value for r in parser("nvbandwidth").measurements(res, check=self.name)
                     if r.metric == "nvbandwidth" and r.value > 0]
            if cells:
                a = int(pair.split("-")[0])
                out.append(judged(plan, "nvlink_p2p_bandwidth", min(cells), check=self.name,
                                  gpu=a, peer=f"{plan.node}:{pair.split('-')[1]}",
                                  detail=f"GPUs {pair} device_to_device_memcpy_read_ce, "
                                         f"slower of {len(cells)} directions"))
        return out
