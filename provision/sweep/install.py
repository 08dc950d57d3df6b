"""``forge sweep install``: the files that make sweeps periodic, rendered by pure functions.

- a systemd service + timer, or a cron entry; both run the sweep under
  ``flock -n`` so a slow run is never overlapped by the next one,
- a logrotate policy for the sweep log,
- the Prometheus textfile path (node_exporter's textfile collector) and the
  JUnit path the sweep writes every run, and the form of each run directory's
  measurements (``--table``: JSON Lines, Parquet or Arrow IPC),
- the node-local health check: ``/usr/local/sbin/forge-health`` and its
  compiled expectations ``/etc/forge/sweep.json``.

Files are written atomically under ``--root`` (``/`` by default); an existing
file with other content is refused unless ``--force``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from provision.errors import InputError
from provision.fsutil import atomic_write_text
from provision.measurement import TABLE_FORMATS


@dataclass(frozen=True)
class InstallOptions:
    spec: str                      # the spec path as the host will see it
    mode: str = "timer"            # timer | cron
    interval: str = "15min"        # systemd OnCalendar-free interval (OnUnitActiveSec)
    cron: str = "*/15 * * * *"
    profile: str = "quick"
    drain: bool = False
    db: str = "/var/lib/forge/history.db"
    prom: str = "/var/lib/node_exporter/textfile_collector/forge_sweep.prom"
    junit: str = "/var/lib/forge/sweep-junit.xml"
    log: str = "/var/log/forge/sweep.log"
    forge: str = "/usr/local/bin/forge"
    lock: str = "/run/lock/forge-sweep.lock"
    table: str = "jsonl"           # each sweep run directory's measurements: TABLE_FORMATS
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in ("timer", "cron"):
            raise InputError(f"install mode {self.mode!r}: use --timer or --cron")
        if not re.fullmatch(r"\d+(s|min|h|d)", self.interval):
            raise InputError(f"--interval {self.interval!r}: use e.g. 15min, 1h, 30s")
        if len(self.cron.split()) != 5:
            raise InputError(f"--cron-schedule {self.cron!r}: five cron fields expected")
        if self.table not in TABLE_FORMATS:
            raise InputError(f"--table {self.table!r}: use one of {', '.join(TABLE_FORMATS)}")


def sweep_argv(o: InstallOptions) -> list[str]:
    argv = [o.forge, "sweep", o.spec, "--profile", o.profile, "--db", o.db, "--prom", o.prom,
            "--junit", o.junit]
    if o.drain:
        argv.append("--drain")
    if o.table != "jsonl":  # the default: units installed before --table existed stay as they are
        argv += ["--table", o.table]
    return [*argv, *o.extra]


def locked(o: InstallOptions) -> list[str]:
    # -n: while a run still holds the lock the next one exits at once with 75 (EX_TEMPFAIL)
    return ["/usr/bin/flock", "-n", "-E", "75", o.lock, *sweep_argv(o)]


def service(o: InstallOptions) -> str:
    return f"""[Unit]
Description=forge health sweep ({o.profile})
Documentation=https://github.com/forge-provision/forge/blob/main/docs/sweeps.md
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={shlex.join(locked(o))}
# 0 healthy, 1 a node failed a check, 4 a node unreachable: the unit must not be
# marked failed for a finding (the textfile and JUnit carry those)
SuccessExitStatus=1 4 75
StandardOutput=append:{o.log}
StandardError=append:{o.log}
Nice=10
IOSchedulingClass=idle
"""


def timer(o: InstallOptions) -> str:
    return f"""[Unit]
Description=forge health sweep every {o.interval}

[Timer]
OnBootSec=5min
OnUnitActiveSec={o.interval}
RandomizedDelaySec=30
Persistent=true

[Install]
WantedBy=timers.target
"""


def cron_entry(o: InstallOptions) -> str:
    cmd = shlex.join(locked(o))
    return (f"# forge health sweep ({o.profile}); flock keeps runs from overlapping\n"
            "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            f"{o.cron} root {cmd} >> {shlex.quote(o.log)} 2>&1\n")


def logrotate(o: InstallOptions) -> str:
    return f"""{o.log} {{
    weekly
    rotate 8
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}}
"""


def health_wrapper(config: str = "/etc/forge/sweep.json",
                   python: str = "/usr/bin/python3",
                   pythonpath: str = "/usr/local/lib/forge") -> str:
    return f"""#!/bin/sh
# forge-health: Slurm HealthCheckProgram (NHC conventions: quiet, one line, exit code).
# Options for it (FORGE_HEALTH_ARGS, e.g. "--drain --profile quick") and test hooks
# (FORGE_SWEEP_XID_FILE, FORGE_SWEEP_DCGM_FILE) come from /etc/default/forge-health.
FORGE_HEALTH_ARGS=""
[ -r /etc/default/forge-health ] && . /etc/default/forge-health
export FORGE_SWEEP_XID_FILE FORGE_SWEEP_DCGM_FILE
PYTHONPATH={shlex.quote(pythonpath)}${{PYTHONPATH:+:$PYTHONPATH}}
export PYTHONPATH
# shellcheck disable=SC2086
exec {python} -m provision.node_programs.health --config {shlex.quote(config)} \
    $FORGE_HEALTH_ARGS "$@"
"""


def files(o: InstallOptions, sweep_config: dict[str, object]) -> dict[str, tuple[str, int]]:
    """Absolute path -> (content, mode) of every file the install writes."""
    out: dict[str, tuple[str, int]] = {
        "/etc/logrotate.d/forge-sweep": (logrotate(o), 0o644),
        "/etc/forge/sweep.json": (json.dumps(sweep_config, indent=2, sort_keys=True) + "\n",
                                  0o644),
        "/usr/local/sbin/forge-health": (health_wrapper(), 0o755),
    }
    if o.mode == "timer":
        out["/etc/systemd/system/forge-sweep.service"] = (service(o), 0o644)
        out["/etc/systemd/system/forge-sweep.timer"] = (timer(o), 0o644)
    else:
        out["/etc/cron.d/forge-sweep"] = (cron_entry(o), 0o644)
    return out


def write(root: Path, rendered: dict[str, tuple[str, int]], *, force: bool) -> list[Path]:
    """Write files under ``root``; refuse to replace a different existing file unless forced."""
    targets = {root / p.lstrip("/"): v for p, v in rendered.items()}
    clash = [str(t) for t, (text, _) in targets.items()
             if t.exists() and t.read_text(encoding="utf-8", errors="replace") != text]
    if clash and not force:
        raise InputError(f"{clash[0]} exists with other content"
                         + (f" (and {len(clash) - 1} more)" if len(clash) > 1 else ""),
                         hint="pass --force to replace it, or --root DIR to stage elsewhere")
    for t, (text, mode) in targets.items():
        atomic_write_text(t, text, mode)
    return sorted(targets)
