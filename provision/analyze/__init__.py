"""The fleet analyzer: hard limits, robust outliers among like parts, pair/link
attribution, node grouping and drift, vectorised in numpy (docs/analyzer.md).

    from provision.analyze import analyze, Baseline
    result = analyze(records, baseline=Baseline.from_records(old), policy=None)
    result.findings        # tuple[Finding, ...], worst first
    result.failed          # anything failing acceptance
    result.exit_code       # ExitCode.CHECKS_FAILED or ExitCode.OK
"""

from provision.analyze.columns import Cohort, Columns, build_columns, from_arrays, make_cohort
from provision.analyze.drift import Baseline
from provision.analyze.engine import analyze, analyze_columns
from provision.analyze.findings import KINDS, Analysis, Finding, Kind
from provision.analyze.load import load, resolve
from provision.analyze.policy import DEFAULT_POLICY, MetricLimit, Policy, Severity

__all__ = [
    "DEFAULT_POLICY",
    "KINDS",
    "Analysis",
    "Baseline",
    "Cohort",
    "Columns",
    "Finding",
    "Kind",
    "MetricLimit",
    "Policy",
    "Severity",
    "analyze",
    "analyze_columns",
    "build_columns",
    "from_arrays",
    "load",
    "make_cohort",
    "resolve",
]
