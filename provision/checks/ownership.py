"""The ownership guard: disruptive checks run only on nodes handed to acceptance.

Burn-in, NCCL, GPUDirect, HBM and DCGM level 3 take every GPU and the fabric
for minutes to hours; on a node that is running a job they ruin the job and
measure nothing. Before any of them runs, over SSH as much as through Slurm,
each node must be *drained* (any drain reason, including forge's own) or in
the acceptance *reservation* named by ``--reservation`` (Slurm shows such a
node as ``reserved``; Kubernetes: cordoned). ``--force`` overrides, for a
node the operator knows is idle. A scheduler that cannot be asked is a
refusal too: "cannot tell" is not "idle".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from provision.actions.policy import NodeState
from provision.checks.base import Check
from provision.errors import InputError


def disruptive(checks: Sequence[Check]) -> list[str]:
    return [c.name for c in checks if c.disruptive]


def refusals(nodes: Sequence[str], states: Mapping[str, NodeState],
             reservation_nodes: Sequence[str] = ()) -> list[str]:
    """Why each node may not run a disruptive check (pure); empty when all may."""
    out = []
    reserved = set(reservation_nodes)
    for n in nodes:
        st = states.get(n)
        if st is None:
            out.append(f"{n}: unknown to the scheduler")
        elif st.drained or n in reserved or st.state.lower().startswith("reserved"):
            continue
        else:
            out.append(f"{n}: {st.state} (not drained or reserved for acceptance)")
    return out


def guard(checks: Sequence[Check], nodes: Sequence[str], states: Mapping[str, NodeState],
          reservation_nodes: Sequence[str] = ()) -> None:
    """Raise unless every node may run the disruptive ``checks`` (pure)."""
    names = disruptive(checks)
    if not names:
        return
    bad = refusals(nodes, states, reservation_nodes)
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise InputError(f"{', '.join(names)} would disturb nodes in service: {shown}",
                         hint="drain them (scontrol update nodename=N state=drain "
                              "reason=acceptance), run in an acceptance reservation "
                              "(--reservation NAME), or pass --force")


def parse_reservation(text: str) -> list[str]:
    """Node names of ``scontrol show reservation NAME -o`` (``Nodes=gpu[001-004]``)."""
    import re

    from provision.nodes import expand

    m = re.search(r"\bNodes=(\S+)", text)
    return list(expand(m[1])) if m and m[1] not in ("(null)", "") else []
