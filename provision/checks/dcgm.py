"""Catalog 7, DCGM diagnostics: ``dcgmi diag -r LEVEL -j``, each test a pass/fail record."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.checks.base import Check, Context, Needs, Raw
from provision.checks.options import option
from provision.checks.reference import annotate
from provision.errors import InputError
from provision.expectations import NodePlan
from provision.measurement import Measurement
from provision.parsers import get as parser

#: the per-node limit of a level-4 run (memtest and the extended tests)
LEVEL4_TIMEOUT_S = 7200.0


@dataclass(frozen=True)
class DcgmOptions:
    level: int | None = option(None, choices=(1, 2, 3, 4),
                               help="dcgmi diag run level (default: acceptance.dcgm_level of "
                                    "the spec, else 3)")


class Dcgm(Check):
    name = "dcgm"
    disruptive = True
    description = "dcgmi diag -r 1..4 (JSON): every test passes on every GPU"
    tags = ("gpu", "diagnostics", "dcgm")
    needs = Needs(gpu=True)
    timeout_s = 3600.0
    tool = "dcgmi"
    Options = DcgmOptions

    def level(self, ctx: Context) -> int:
        opts: DcgmOptions = ctx.options
        level = int(opts.level or
                    ctx.site.acceptance_map.get("dcgm_level", 3))
        if level not in (1, 2, 3, 4):
            raise InputError(f"dcgm level {level} is not one of 1, 2, 3, 4")
        return level

    def argv(self, ctx: Context) -> list[str]:
        return ["dcgmi", "diag", "-r", str(self.level(ctx)), "-j"]

    def timeout(self, ctx: Context) -> float:
        """An hour, two for level 4: NVIDIA gives level 3 about 15 minutes and level 4 only
        as "extended, longer-running" (dcgmi-diag reference); the field review allows ~2 h.
        How long it takes on an 8-GPU node is a figure to take from a golden node, then to
        set with --timeout."""
        if ctx.timeout_s:
            return float(ctx.timeout_s)
        return LEVEL4_TIMEOUT_S if self.level(ctx) == 4 else self.timeout_s

    def parse(self, raw: Raw) -> Any:
        # dcgmi exits non-zero when a test fails: the JSON still says which
        return parser("dcgmi-diag").parse(raw.stdout, node=raw.key,
                                          source_name=f"{raw.key}:dcgmi diag")

    def sanity(self, data: Any) -> list[str]:
        return [] if data.tests else ["dcgmi diag reported no tests"]

    def measurements(self, data: Any, plan: NodePlan) -> list[Measurement]:
        recs = parser("dcgmi-diag").measurements(data, check=self.name)
        return annotate(plan, recs, self.name)
