"""The version-compatibility table and the spec's check against it."""

from __future__ import annotations

import pytest

from provision.spec import compat
from provision.spec.presets import DEFAULT_VERSIONS


def test_every_row_names_its_source() -> None:
    t = compat.table()
    rows = [r for section in t.values() for r in section.values()]
    assert rows and all(r.get("source") for r in rows)


@pytest.mark.parametrize("scheduler", ["slurm", "kubernetes"])
def test_the_defaults_go_together(scheduler: str) -> None:
    assert compat.problems(dict(DEFAULT_VERSIONS), scheduler) == []
    assert DEFAULT_VERSIONS["driver_branch"] == "580"


@pytest.mark.parametrize(("change", "scheduler", "key", "text"), [
    ({"driver_branch": "570"}, "slurm", "driver_branch", "driver branch 570 is end-of-life"),
    ({"driver_branch": "570", "cuda": "13.0"}, "slurm", "cuda", "CUDA 13.0 needs driver branch 580"),
    ({"doca_ofed": "2.10.0"}, "kubernetes", "doca_ofed",
     "Network Operator v26.4.1 ships DOCA 3.4 drivers, the hosts get DOCA 2.10.0"),
])
def test_combinations_the_table_rules_out(change: dict, scheduler: str, key: str, text: str) -> None:
    found = compat.problems({**DEFAULT_VERSIONS, **change}, scheduler)
    assert any(k == key and text in m for k, m in found), found


def test_doca_is_not_judged_without_kubernetes_or_with_inbox() -> None:
    assert compat.problems({**DEFAULT_VERSIONS, "doca_ofed": "2.10.0"}, "slurm") == []
    assert compat.problems({**DEFAULT_VERSIONS, "doca_ofed": "inbox"}, "kubernetes") == []


def test_validate_names_the_version_and_its_line() -> None:
    from pathlib import Path

    from provision.errors import InputError
    from provision.spec.loader import load_site_text

    example = Path(__file__).resolve().parents[2] / "site-specs" / "small.yaml"
    text = example.read_text().replace('driver_branch: "580"', 'driver_branch: "570"')
    assert text != example.read_text()
    with pytest.raises(InputError) as err:
        load_site_text(text, "small.yaml", example.parent)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if 'driver_branch: "570"' in t)
    assert f"small.yaml:{line}:" in str(err.value) or f"small.yaml:{line}:" in repr(err.value.__dict__)
    assert "stack.versions.driver_branch: driver branch 570 is end-of-life" in str(err.value.__dict__)
