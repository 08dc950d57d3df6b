"""The model's shared equality, hash and repr give what ``@dataclass`` generates.

Every frozen class of ``provision.spec.model`` inherits them from ``Value`` instead
of compiling its own; each is compared here with a twin class that ``@dataclass``
writes from the same fields, over the objects of a real site.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import pytest

from provision.spec import load_site, model

ROOT = Path(__file__).resolve().parents[2]
CLASSES = [c for c in vars(model).values()
           if isinstance(c, type) and dataclasses.is_dataclass(c) and issubclass(c, model.Value)]


@functools.cache
def _twin(cls: type) -> type:
    """The class ``@dataclass(frozen=True)`` makes of the same fields, eq/hash/repr its own."""
    specs = [(f.name, f.type, dataclasses.field(default=f.default,
                                                default_factory=f.default_factory,
                                                compare=f.compare, hash=f.hash, repr=f.repr))
             for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, specs, frozen=True)


def _copy_as(cls: type, obj: Any) -> Any:
    return cls(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})


def _as_twin(obj: Any) -> Any:
    return _copy_as(_twin(type(obj)), obj)


def _objects() -> list[Any]:
    """Instances of the model classes, from two example sites."""
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, model.Value):
            found.append(value)
            for f in dataclasses.fields(value):
                walk(getattr(value, f.name))
        elif isinstance(value, tuple):
            for v in value:
                walk(v)

    for name in ("small.yaml", "roce.yaml"):
        walk(load_site(ROOT / "site-specs" / name))
    # not in the example sites' fields: a recorded rail map, a profile's physical figures
    found += [model.RailPort("0000:1a:00.0", "mlx5_0", "ibp26s0"),
              model.RailPort("0000:1a:00.0", "mlx5_0"), model.RailPort("0000:1b:00.0", "mlx5_1")]
    profile = next(p for p in found[0].profiles if p.gpu is not None)
    found += [f for f in map(profile.figure, ("gpu.memory_bandwidth_gbs", "nic.rate_gbps",
                                              "gpu.pcie_bandwidth_gbs")) if f is not None]
    return found


OBJECTS = _objects()


def test_every_model_class_is_covered() -> None:
    assert set(CLASSES) == {type(o) for o in OBJECTS}
    assert len(CLASSES) >= 15


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_eq_hash_repr_match_dataclass(cls: type) -> None:
    objects = [o for o in OBJECTS if type(o) is cls][:30]
    objects.append(_variant(objects[0]))  # one that differs in one compared field
    assert len({repr(o) for o in objects}) >= 2
    for a in objects:
        twin_a = _as_twin(a)
        assert repr(a) == repr(twin_a)
        assert _hash(a) == _hash(twin_a)
        for b in objects:
            assert (a == b) is (twin_a == _as_twin(b)), (a, b)
        assert (a == object()) is False and (a != object()) is True
        # a subclass with the same fields is not equal, as with @dataclass
        assert (a == _copy_as(type("Sub", (cls,), {}), a)) is (
            twin_a == _copy_as(type("Sub", (type(twin_a),), {}), a))


def _hash(obj: Any) -> int | type[Exception]:
    """The hash, or the error hashing raises (a field holding a dict makes both raise)."""
    try:
        return hash(obj)
    except TypeError as exc:
        return type(exc)


def _variant(obj: Any) -> Any:
    """``obj`` with its first field changed."""
    first = dataclasses.fields(obj)[0].name
    value = getattr(obj, first)
    changed = {str: lambda v: v + "-x", int: lambda v: v + 1, float: lambda v: v + 1.0}
    return dataclasses.replace(obj, **{first: changed[type(value)](value)})


def test_fields_left_out_of_compare_stay_out() -> None:
    site = OBJECTS[0]
    assert isinstance(site, model.Site)
    other = dataclasses.replace(site, text="changed", document={"x": 1})
    assert other == site
    assert dataclasses.replace(site, name="other") != site
    with pytest.raises(dataclasses.FrozenInstanceError):
        site.name = "x"  # type: ignore[misc]
