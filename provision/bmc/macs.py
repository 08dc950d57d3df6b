"""Write the MACs the BMCs discovered: to a new file, or into the spec with a backup.

Neither path edits a user's file silently: ``write_macs_file`` refuses an
existing file unless told to replace it, and ``update_spec`` keeps a
timestamped backup, only adds MACs the spec does not have yet (a MAC that
differs from the spec is a mismatch to look at, never something to
overwrite), and checks that the result still loads before replacing it.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ClusterShell.NodeSet import NodeSet

from provision.errors import InputError
from provision.fsutil import atomic_write_text

SCHEMA_VERSION = 1


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _q(text: str) -> Any:
    """Quoted on output: an unquoted MAC reads as a base-60 integer to YAML 1.1 parsers."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    return DoubleQuotedScalarString(text)


def write_macs_file(path: Path, site_name: str, macs: Mapping[str, Mapping[str, str]],
                    *, replace: bool = False) -> None:
    """A YAML file shaped like ``node_data``, to review and paste into the spec."""
    if path.exists() and not replace:
        raise InputError(f"{path} exists; not overwriting it",
                         hint="choose another file, or pass --force to replace it")
    doc = {"schema_version": SCHEMA_VERSION, "site": site_name,
           "node_data": {node: {"macs": {_q(k): _q(v) for k, v in m.items()}}
                         for node, m in sorted(macs.items()) if m}}
    buf = io.StringIO()
    buf.write("# MAC addresses reported by the BMCs (forge bmc inventory --write-macs)\n")
    _yaml().dump(doc, buf)
    atomic_write_text(path, buf.getvalue())


def update_spec(spec: Path, macs: Mapping[str, Mapping[str, str]], *,
                text: str) -> tuple[Path | None, int]:
    """Add missing MACs under ``node_groups[].node_data.<node>.macs``; (backup, count added).

    ``text`` is the spec as the command read it (``Site.text``): the file is read once.
    """
    from provision.spec import load_site_text

    y = _yaml()
    doc = y.load(text)
    groups = doc.get("node_groups") or []
    added = 0
    for node, found in sorted(macs.items()):
        group = next((g for g in groups if node in NodeSet(str(g.get("nodes", "")))), None)
        if group is None:
            continue
        node_data = group.setdefault("node_data", {})
        entry = node_data.setdefault(node, {})
        known = entry.setdefault("macs", {})
        have = {str(v).lower() for v in known.values()}
        for name, mac in found.items():
            if mac.lower() in have or name in known:
                continue
            known[_q(name)] = _q(mac)
            have.add(mac.lower())
            added += 1
    if not added:
        return None, 0
    buf = io.StringIO()
    y.dump(doc, buf)
    new_text = buf.getvalue()
    load_site_text(new_text, source=str(spec), base_dir=spec.resolve().parent)
    backup = spec.with_name(f"{spec.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while backup.exists():
        backup = spec.with_name(f"{spec.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        n += 1
    shutil.copy2(spec, backup)
    atomic_write_text(spec, new_text, mode=spec.stat().st_mode & 0o777)
    return backup, added
