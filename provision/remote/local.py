"""Run commands on this machine through :mod:`provision.proc` (one node: ``localhost``)."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from provision import proc
from provision.remote.base import Command, Result, classify


class LocalLauncher:
    """Runs every node's command here; for checks of the machine forge runs on."""

    name = "local"

    def __init__(self, max_workers: int = 4) -> None:
        self.max_workers = max_workers

    def run_one(self, node: str, cmd: Command) -> Result:
        try:
            done = proc.run(cmd.argv, timeout=cmd.timeout, input_text=cmd.stdin)
        except proc.ToolMissing:
            return Result(node, cmd.argv, "not-installed", None, "", "", 0.0,
                          f"{cmd.argv[0]}: not installed")
        return classify(node, cmd.argv, done.returncode, done.stdout, done.stderr,
                        done.duration_s, done.timed_out, cmd.timeout)

    def run(self, commands: Mapping[str, Command]) -> dict[str, Result]:
        if not commands:
            return {}
        workers = max(1, min(self.max_workers, len(commands)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {n: pool.submit(self.run_one, n, c) for n, c in commands.items()}
            return {n: f.result() for n, f in futures.items()}

    def run_many_on(self, node: str, commands: Mapping[str, Command]) -> dict[str, Result]:
        """Several commands here at once, keyed like ``commands``."""
        if not commands:
            return {}
        workers = max(1, min(self.max_workers, len(commands)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {k: pool.submit(self.run_one, node, c) for k, c in commands.items()}
            return {k: f.result() for k, f in futures.items()}

    def close(self) -> None:
        pass
