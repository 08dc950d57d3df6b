"""Build hook: copy forge's run-time assets (playbooks, inventory templates, example
site specs) into the wheel as ``provision/_assets/``. The node-side programs are a
package of forge itself (``provision/node_programs``), so the wheel has them anyway.

Everything else is in pyproject.toml; ``provision/paths.py`` is where forge finds
these at run time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ASSETS = ("playbooks", "inventory/templates", "site-specs")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "molecule", ".cache", "*.retry")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        here = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "provision" / "_assets"
        for rel in ASSETS:
            dest = target / rel
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(here / rel, dest, ignore=SKIP, symlinks=False)


setup(cmdclass={"build_py": BuildWithAssets})
