"""Helpers for the sweep tests: the forge CLI run in-process through its error boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture
def forge(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    from provision.cli.main import main

    def run(*argv: str) -> Run:
        code = 0
        try:
            main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run
