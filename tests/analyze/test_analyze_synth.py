"""The benchmark's synthetic fleets: the analyzer finds every injected fault, and nothing else."""

from __future__ import annotations

from typing import Any

from provision.analyze import analyze


def test_clean_fleet_has_no_findings(synth: Any) -> None:
    fleet = synth.generate(64, models=("h100", "l40s"), seed=11)
    assert analyze(fleet.records).findings == ()


def test_every_fault_class_is_found_and_attributed(synth: Any) -> None:
    fleet = synth.generate(96, seed=12, faults_per_class=1, magnitude=(0.10, 0.12))
    assert {f.cls for f in fleet.faults} == set(synth.FAULT_CLASSES)
    per, false = synth.score(analyze(fleet.records).findings, fleet.faults)
    assert false == []
    assert {c: (s.found, s.faults) for c, s in per.items()} == {
        c: (1, 1) for c in synth.FAULT_CLASSES}
