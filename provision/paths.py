"""Where forge's non-Python assets live: playbooks, inventory templates, node-side checks.

forge runs from a checkout (or an editable install of one); ``FORGE_HOME``
points elsewhere when the assets were installed apart from the package.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    env = os.environ.get("FORGE_HOME")
    return Path(env) if env else Path(__file__).resolve().parents[1]


def templates_dir() -> Path:
    return repo_root() / "inventory" / "templates"


def playbooks_dir() -> Path:
    return repo_root() / "playbooks"


def checks_dir() -> Path:
    return repo_root() / "checks"


def examples_dir() -> Path:
    return repo_root() / "inventory" / "examples"
