"""Run checks: choose where each applies, launch, keep the raw output, parse, judge.

The engine never raises for a node: a node that cannot be reached, a tool
that is not installed, a program that hangs (killed at its timeout), output
that cannot be parsed, a run that fails its sanity test or a reading without
a reference each become a status in the verdict and, where the analyzer must
see it, a measurement (``tool_present 0``, ``tool_ran_ok 0``, ``node_reachable 0``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from provision.checks.base import DEFAULT_GPU_PYTHON, DEFAULT_PYTHON, Check, Context, Raw
from provision.checks.reference import MissingReference, threshold
from provision.errors import ExitCode, ForgeError, combine, unreadable_number
from provision.expectations import NodePlan, SitePlan
from provision.judge import failed
from provision.measurement import Measurement, run_file
from provision.remote.base import Command, Launcher, Result
from provision.runs import SCHEMA_VERSION, Run
from provision.spec.model import Site

Outcome = Literal["pass", "fail", "error", "timeout", "not-installed", "unreachable", "skipped"]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Outcomes:
    check: str
    status: dict[str, Outcome]          # key (node or pair) -> outcome
    reasons: dict[str, str]
    skipped: str | None = None          # why the whole check did not apply


@dataclass
class RunReport:
    site: str
    via: str
    started: str
    outcomes: list[Outcomes] = field(default_factory=list)
    records: list[Measurement] = field(default_factory=list)
    seconds: float = 0.0
    table: str = "jsonl"                # the form of the run's measurements file

    def counts(self) -> dict[str, int]:
        c: dict[str, int] = {}
        for o in self.outcomes:
            for s in o.status.values():
                c[s] = c.get(s, 0) + 1
        return c

    @property
    def unreachable(self) -> bool:
        return any(s == "unreachable" for o in self.outcomes for s in o.status.values())

    @property
    def all_passed(self) -> bool:
        return all(s in ("pass", "skipped") for o in self.outcomes for s in o.status.values())

    @property
    def exit_code(self) -> ExitCode:
        """4 a node unreachable, else 1 a check failed or could not judge, else 0."""
        return combine([ExitCode.HOSTS_UNREACHABLE if self.unreachable else ExitCode.OK,
                        ExitCode.OK if self.all_passed else ExitCode.CHECKS_FAILED])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": "forge-check-run", "site": self.site,
            "via": self.via, "started": self.started, "seconds": round(self.seconds, 2),
            "measurements": run_file(self.table), "measurement_schema_version": 1,
            "result": "pass" if self.all_passed else "fail", "counts": self.counts(),
            "checks": [{"check": o.check, "skipped": o.skipped,
                        "nodes": {k: {"status": s, "reason": o.reasons.get(k, "")}
                                  for k, s in sorted(o.status.items())}}
                       for o in self.outcomes],
        }


def _problem(node: str, check: str, metric: str, detail: str, *, plan: NodePlan | None,
             **extra: Any) -> Measurement:
    return Measurement(node=node, metric=metric, value=0.0, gpu=None, unit="bool", min=1.0,
                       check=check, detail=detail[:300],
                       profile=plan.profile if plan else None, **extra)


def _launch_problem(check: Check, key: str, r: Result,
                    plan: NodePlan | None) -> tuple[Outcome, str, Measurement]:
    key = plan.node if plan is not None else key
    if r.status == "unreachable":
        return "unreachable", r.detail, _problem(key, check.name, "node_reachable", r.detail,
                                                 plan=plan)
    if r.status == "not-installed":
        return "not-installed", r.detail, _problem(key, check.name, "tool_present", r.detail,
                                                   plan=plan)
    detail = r.detail or "timeout"
    return "timeout", detail, _problem(key, check.name, "tool_ran_ok", detail, plan=plan)


class Engine:
    """Runs checks over a launcher (node scope) and a submit launcher (cluster scope)."""

    def __init__(self, site: Site, plan: SitePlan, launcher: Launcher, *,
                 cluster_launcher: Launcher, cluster_node: str, via: str, rundir: Run,
                 python: str = DEFAULT_PYTHON, gpu_python: str = DEFAULT_GPU_PYTHON,
                 options: Mapping[str, Any] | None = None,
                 timeout_s: float | None = None, reservation: str | None = None,
                 table: str = "jsonl", log: Log = lambda _m: None) -> None:
        self.site = site
        self.plan = plan
        self.launcher = launcher
        self.cluster_launcher = cluster_launcher
        self.cluster_node = cluster_node
        self.via = via
        self.rundir = rundir
        self.python = python
        self.gpu_python = gpu_python
        self.options = dict(options or {})     # check name -> its typed options
        self.timeout_s = timeout_s
        self.reservation = reservation
        self.table = table                     # jsonl, parquet or arrow (TABLE_FORMATS)
        self.log = log

    def _ctx(self, check: Check, nodes: Sequence[str], node: str | None = None) -> Context:
        plan = self.plan.for_node(node) if node else None
        options = self.options.get(check.name) or check.Options()
        return Context(self.site, tuple(nodes), node, plan, self.python, self.via, options,
                       self.timeout_s, self.reservation, gpu_python=self.gpu_python)

    def run(self, checks: Sequence[Check], nodes: Sequence[str]) -> RunReport:
        t0 = time.monotonic()
        report = RunReport(self.site.name, self.via, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                   time.gmtime()),
                           table=self.table)
        for check in checks:
            self.log(f"check {check.name} ...")
            if check.scope == "node":
                outcome, records = self._run_node_check(check, nodes)
            else:
                outcome, records = self._run_cluster_check(check, nodes)
            report.outcomes.append(outcome)
            report.records.extend(records)
            self.log(f"check {check.name}: " + (f"skipped ({outcome.skipped})" if outcome.skipped
                                                 else _summary(outcome)))
        report.seconds = time.monotonic() - t0
        from provision.analyze.table import write_measurements  # pyarrow: only when written

        write_measurements(self.rundir.path, report.records, self.table)
        self.rundir.write_json("verdict.json", report.to_dict())
        return report

    # --- node scope
    def _run_node_check(self, check: Check, nodes: Sequence[str]) -> tuple[Outcomes, list]:
        status: dict[str, Outcome] = {}
        reasons: dict[str, str] = {}
        commands: dict[str, Command] = {}
        for n in nodes:
            p = self.plan.for_node(n)
            why = check.needs.unmet(self.site, [p])
            if why:
                status[n], reasons[n] = "skipped", why
                continue
            ctx = self._ctx(check, nodes, n)
            try:
                for ref in check.references:
                    threshold(p, ref)  # an unjudgeable run is an error before it starts
                argv = check.argv(ctx)
                commands[n] = Command(tuple(argv), check.timeout(ctx), check.stdin(ctx))
            except ForgeError as exc:
                status[n], reasons[n] = "error", exc.message
        if not commands:
            skipped = "; ".join(sorted(set(reasons.values()))) or "no nodes"
            return Outcomes(check.name, status, reasons, skipped=skipped), []
        results = self.launcher.run(commands)
        records: list[Measurement] = []
        parsed: dict[str, Any] = {}
        for n, r in results.items():
            self.rundir.write_result(check.name, n, r)
            plan = self.plan.for_node(n)
            outcome, reason, recs, data = self._judge(check, n, r, plan)
            status[n], reasons[n] = outcome, reason
            records.extend(recs)
            if data is not None:
                parsed[n] = data
        cross = getattr(check, "compare_nodes", None)
        if cross is not None and parsed:
            extra: list[Measurement] = cross(parsed, self.plan)
            records.extend(extra)
            for m in extra:
                if failed(m) and status.get(m.node) == "pass":
                    status[m.node], reasons[m.node] = "fail", f"{m.metric} {m.detail or ''}"
        return Outcomes(check.name, status, reasons), records

    def _judge(self, check: Check, key: str, r: Result, plan: NodePlan | None,
               measure: Callable[[Any], list[Measurement]] | None = None,
               nodes: tuple[str, ...] = ()) -> tuple[Outcome, str, list[Measurement], Any]:
        if not r.ran:
            outcome, reason, rec = _launch_problem(check, key, r, plan)
            return outcome, reason, [rec], None
        try:
            data = check.parse(Raw(key, r.stdout, r.stderr, r.returncode, nodes))
        except (ForgeError, ValueError, OverflowError) as exc:
            # one node's output that does not read is that node's error, never the run's
            message = exc.message if isinstance(exc, ForgeError) else unreadable_number(exc)
            if message is None:
                raise  # a bug in forge
            why = f"output not understood: {message}"
            if r.status == "failed":
                tail = (r.stderr.strip().splitlines() or [""])[-1]
                why = f"{r.detail}: {tail}" if tail else why
            return "error", why, [_problem(plan.node if plan else key, check.name, "tool_ran_ok",
                                           why, plan=plan)], None
        problems = check.sanity(data)
        if problems:
            why = "did not run correctly: " + "; ".join(problems)
            return "error", why, [_problem(plan.node if plan else key, check.name, "tool_ran_ok",
                                           why, plan=plan)], data
        try:
            if measure is not None:
                recs = measure(data)
            else:
                assert plan is not None
                recs = check.measurements(data, plan)
        except MissingReference as exc:
            return "error", exc.message, [], data
        bad = [m for m in recs if failed(m)]
        if bad:
            first = bad[0]
            where = f" gpu{first.gpu}" if first.gpu is not None else ""
            return ("fail", f"{len(bad)} reading(s) outside limits, e.g. {first.node}{where} "
                    f"{first.metric}={first.value:g} ({first.detail or first.source or ''})",
                    recs, data)
        return "pass", "", recs, data

    def _maybe_plan(self, node: str) -> NodePlan | None:
        try:
            return self.plan.for_node(node)
        except KeyError:
            return None

    # --- cluster scope
    def _run_cluster_check(self, check: Check, nodes: Sequence[str]) -> tuple[Outcomes, list]:
        plans = [self.plan.for_node(n) for n in nodes]
        why = check.needs.unmet(self.site, plans)
        if why:
            return Outcomes(check.name, {}, {}, skipped=why), []
        ctx = self._ctx(check, nodes)
        try:
            invs = check.invocations(ctx)
        except ForgeError as exc:
            return Outcomes(check.name, {"cluster": "error"}, {"cluster": exc.message}), []
        if not invs:
            return Outcomes(check.name, {}, {}, skipped="nothing to run"), []
        commands = {i.key: Command(i.argv, check.timeout(ctx), i.stdin) for i in invs}
        covered = {i.key: i.nodes for i in invs}
        run_many = getattr(self.cluster_launcher, "run_many_on", None)
        if run_many is not None and len(commands) > 1 and not getattr(check, "serial", False):
            results: dict[str, Result] = run_many(self.cluster_node, commands)
        else:
            results = {k: self.cluster_launcher.run({self.cluster_node: c})[self.cluster_node]
                       for k, c in commands.items()}
        status: dict[str, Outcome] = {}
        reasons: dict[str, str] = {}
        records: list[Measurement] = []
        for key, r in results.items():
            self.rundir.write_result(check.name, key, r)
            # problems of a cluster run are recorded against its first node, else the host
            # that ran it
            first = (covered[key] or (self.cluster_node,))[0]
            plan = self.plan.for_node(first) if first in nodes else \
                self._maybe_plan(self.cluster_node)

            def measure(data: Any) -> list[Measurement]:
                return check.cluster_measurements(data, self.plan)

            outcome, reason, recs, _ = self._judge(check, key, r, plan, measure, covered[key])
            status[key], reasons[key] = outcome, reason
            records.extend(recs)
        return Outcomes(check.name, status, reasons), records


def _summary(o: Outcomes) -> str:
    from provision.nodes import group_by_text

    try:
        groups = group_by_text({k: v for k, v in o.status.items()})
        return ", ".join(f"{ns}: {text}" for ns, text in groups)
    except Exception:  # pair keys ("a+b") are not node names ClusterShell can fold
        return ", ".join(f"{k}: {v}" for k, v in sorted(o.status.items()))
