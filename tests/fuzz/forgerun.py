"""Run the real `forge` CLI (in-process, through its one entry point) and judge the outcome
the way the robustness bar does: the documented exit code, a one-line message, no
traceback, nothing written outside the output directory."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.cli.main import main


@dataclass
class Run:
    code: int
    out: str
    err: str

    def assert_refused(self, code: int = 2, *, names: str = "") -> None:
        """Exit ``code``, a `forge: error:` first line naming ``names``, never a traceback."""
        assert self.code == code, (self.code, self.err[-2000:])
        assert "Traceback" not in self.err and "Traceback" not in self.out
        errors = [ln for ln in self.err.splitlines()
                  if ln.startswith(("forge: error:", "forge: internal error:", "Error:"))]
        assert len(errors) == 1, self.err[-2000:]     # one error line (a hint may follow)
        assert not errors[0].startswith("forge: internal"), errors[0]
        assert names in self.err, (names, self.err[-2000:])

    def assert_ok(self) -> None:
        assert self.code == 0, (self.code, self.err[-2000:])
        assert "Traceback" not in self.err


def forge(*args: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """The CLI in this process (fast: no interpreter start per case)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def forge_process(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                  timeout: float = 60, stdin: str | None = None) -> Run:
    """The CLI as its own process (for signals, closed streams and pipes)."""
    proc = subprocess.run([sys.executable, "-m", "provision", *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, input=stdin)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with (mode, size): to prove nothing else changed."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size)
    return out
