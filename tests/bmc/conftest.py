"""Fixtures for the BMC tests live in ``bmclab`` (shared with benchmarks/bmc_bench.py)."""

from bmclab import (  # noqa: F401  (pytest collects fixtures from this namespace)
    _no_proxy,
    dead_port,
    emulators,
    forge,
    hung_port,
    iso_url,
    tls,
    xcc,
)
