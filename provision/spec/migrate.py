"""Spec versions and migrations.

``MIGRATIONS[v]`` turns a version-``v`` document into a version ``v+1`` one.
Version 1 is the first published format, so the table is empty today; when
the format changes, add a function here and bump ``SPEC_VERSION`` in
:mod:`provision.spec.schema`. `forge migrate SPEC -o NEW` writes the result
without touching the original.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provision.spec.schema import SPEC_VERSION

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}


class VersionProblem(Exception):
    pass


def migrate(doc: dict[str, Any], migrations: dict[int, Migration] | None = None,
            target: int = SPEC_VERSION) -> tuple[dict[str, Any], list[int]]:
    """Bring ``doc`` to ``target``; returns the new document and the versions it passed."""
    table = MIGRATIONS if migrations is None else migrations
    version = doc.get("spec_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise VersionProblem(f"spec_version must be an integer (this forge writes {target})")
    if version > target:
        raise VersionProblem(f"spec_version {version} is newer than this forge understands "
                             f"(up to {target}); upgrade forge")
    passed = []
    while version < target:
        step = table.get(version)
        if step is None:
            raise VersionProblem(f"no migration from spec_version {version} "
                                 f"(supported: {sorted(table) or 'none'} up to {target})")
        doc = step(dict(doc))
        passed.append(version)
        version += 1
        doc["spec_version"] = version
    return doc, passed
