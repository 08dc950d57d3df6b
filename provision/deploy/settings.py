"""How forge tunes Ansible for clusters of hundreds of nodes, as environment variables.

Three profiles:

- ``forge`` (the default): the tuning below, with Mitogen's connection and
  strategy plugin. Mitogen keeps one Python interpreter per host for the
  whole run and caches module code there, so a task costs a message, not a
  fresh interpreter, an AnsiballZ payload and SSH round trips. On a no-change
  rerun that is most of the time spent (``benchmarks/deploy_bench.py``).
- ``forge-ssh``: the same tuning over Ansible's own ssh connection (pipelining,
  ControlPersist). For sites where Mitogen cannot be used; ``forge`` falls
  back to it when Mitogen is not installed.
- ``defaults``: Ansible's own settings, kept for comparison.

What forge needs to work at all and safely is set in every profile: the roles
path, no retry files, and host key checking on (ansible-runner turns it off
unless told otherwise, and then both connection paths would accept a node
whose key changed, whatever the inventory's known_hosts says).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Profile = Literal["forge", "forge-ssh", "defaults"]
PROFILES: tuple[Profile, ...] = ("forge", "forge-ssh", "defaults")

MAX_FORKS = 100
MITOGEN_STRATEGY = "mitogen_linear"


@dataclass(frozen=True)
class Tuning:
    """The settings that matter at scale, with the reason for each."""

    forks: int                 # parallel hosts per task; Ansible's default is 5
    pipelining: bool           # run modules over the open SSH session: 1 round trip, not 3-4
    control_persist_s: int     # keep one SSH master per host across tasks and plays
    fact_cache_dir: Path       # jsonfile fact cache: later plays and runs skip setup
    fact_cache_timeout_s: int
    connect_timeout_s: int     # a dead node is reported unreachable quickly


def forks_for(hosts: int) -> int:
    """One fork per host up to MAX_FORKS (one control host drives ~100 SSH sessions)."""
    return max(5, min(hosts, MAX_FORKS))


def forge_tuning(hosts: int, cache_dir: Path) -> Tuning:
    return Tuning(forks=forks_for(hosts), pipelining=True, control_persist_s=300,
                  fact_cache_dir=cache_dir, fact_cache_timeout_s=86400, connect_timeout_s=15)


def mitogen_strategy_dir() -> Path | None:
    """Where the installed Mitogen keeps its strategy plugins, or None without Mitogen."""
    try:
        import ansible_mitogen
    except ImportError:
        return None
    path = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return path if (path / f"{MITOGEN_STRATEGY}.py").is_file() else None


def environment(profile: Profile, *, hosts: int, cache_dir: Path, roles_path: Path,
                control_path_dir: Path | None = None,
                mitogen_dir: Path | None = None) -> dict[str, str]:
    """ANSIBLE_* variables for a run (pure: ``mitogen_dir`` says where Mitogen is)."""
    env = {
        "ANSIBLE_ROLES_PATH": str(roles_path),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }
    if profile == "defaults":
        return env
    t = forge_tuning(hosts, cache_dir)
    ssh_args = (f"-o ControlMaster=auto -o ControlPersist={t.control_persist_s}s "
                "-o ServerAliveInterval=5 -o ServerAliveCountMax=3 "
                "-o PreferredAuthentications=publickey")
    env.update({
        "ANSIBLE_FORKS": str(t.forks),
        "ANSIBLE_PIPELINING": str(t.pipelining),
        "ANSIBLE_SSH_ARGS": ssh_args,
        "ANSIBLE_TIMEOUT": str(t.connect_timeout_s),
        "ANSIBLE_GATHERING": "smart",
        "ANSIBLE_FACT_CACHING": "jsonfile",
        "ANSIBLE_FACT_CACHING_CONNECTION": str(t.fact_cache_dir),
        "ANSIBLE_FACT_CACHING_TIMEOUT": str(t.fact_cache_timeout_s),
        "ANSIBLE_INTERNAL_POLL_INTERVAL": "0.001",
    })
    if control_path_dir is not None:
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control_path_dir)
    if profile == "forge" and mitogen_dir is not None:
        env["ANSIBLE_STRATEGY_PLUGINS"] = str(mitogen_dir)
        env["ANSIBLE_STRATEGY"] = MITOGEN_STRATEGY
    return env


def strategy_of(env: dict[str, str]) -> str:
    """The strategy a run used, for its record."""
    return env.get("ANSIBLE_STRATEGY", "linear")


# The control host's variables Ansible may see: nothing else of the operator's
# environment (tokens, passwords, cloud keys) reaches ansible-playbook, so nothing
# else can land in ansible-runner's record of the run (artifacts/*/command).
PASSED_VARS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR",
    "SSH_AUTH_SOCK", "VIRTUAL_ENV", "PYTHONPATH", "XDG_RUNTIME_DIR",
})
_SECRET_WORDS = ("PASS", "TOKEN", "SECRET", "CREDENTIAL", "_KEY", "PRIVATE")


def passes(name: str) -> bool:
    """Whether the control host's variable ``name`` is handed to ansible-playbook."""
    if name in PASSED_VARS or name.startswith("LC_"):
        return True
    if name.startswith("ANSIBLE_"):
        upper = name.upper()
        return upper.endswith("_FILE") or not any(w in upper for w in _SECRET_WORDS)
    return False


def scrubbed(env: dict[str, str], *, host_env: dict[str, str], own: dict[str, str]
             ) -> dict[str, str]:
    """``env`` as ansible-runner built it (the host's variables plus its own and
    forge's ``own``), less every host variable that :func:`passes` refuses."""
    return {k: v for k, v in env.items()
            if k in own or passes(k) or (k not in host_env)}
