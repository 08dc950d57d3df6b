"""Run one operation on many BMCs at once: bounded threads, a deadline per node.

A node's deadline starts when a worker picks it up (a node waiting in the
queue does not lose its time), and every request it makes is clamped to it
(see :mod:`provision.bmc.client`), so a dead or hung BMC costs one worker at
most ``node_deadline_s`` and is reported unreachable; the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from provision.bmc.client import classify
from provision.bmc.model import BmcOptions, BmcTarget, Outcome, Status

T = TypeVar("T")

#: work(target, deadline) -> value; raise anything on failure (it is classified)
Work = Callable[[BmcTarget, float], T]

# A worker stops at its deadline plus at most one retry pause; this slack is
# what the coordinator allows beyond that before it stops waiting on a thread.
_GRACE_S = 5.0


def run_one(target: BmcTarget, work: Work[T], opts: BmcOptions) -> Outcome[T]:
    start = time.monotonic()
    deadline = start + opts.timeouts.node_deadline_s
    try:
        value = work(target, deadline)
    except Exception as exc:  # every failure becomes an outcome, never a traceback
        failure = classify(exc, opts)
        return Outcome(target.node, target.address, failure.status, None, failure.message,
                       time.monotonic() - start)
    return Outcome(target.node, target.address, Status.OK, value, "",
                   time.monotonic() - start)


def fan_out(targets: Sequence[BmcTarget], work: Work[T], opts: BmcOptions,
            ) -> list[Outcome[T]]:
    """Outcomes in target order; no exception escapes for a single node."""
    if not targets:
        return []
    workers = max(1, min(opts.timeouts.concurrency, len(targets)))
    waves = -(-len(targets) // workers)
    budget = waves * (opts.timeouts.node_deadline_s + opts.timeouts.retry_delay_s) + _GRACE_S
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bmc")
    futures: list[Future[Outcome[T]]] = [
        pool.submit(run_one, t, work, opts) for t in targets]
    try:
        wait(futures, timeout=budget)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    outcomes: list[Outcome[T]] = []
    for target, fut in zip(targets, futures, strict=True):
        if fut.done() and not fut.cancelled():
            outcomes.append(fut.result())
        else:
            outcomes.append(Outcome(target.node, target.address, Status.UNREACHABLE, None,
                                    "no answer within the node deadline "
                                    f"({opts.timeouts.node_deadline_s:g} s)"))
    return outcomes
