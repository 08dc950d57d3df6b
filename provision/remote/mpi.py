"""``mpirun`` argv builder (Open MPI) for multi-node programs where Slurm is not used."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def mpirun_argv(hosts: Sequence[str], slots_per_host: int, program: Sequence[str], *,
                env: Mapping[str, str] | None = None, ssh_port: int | None = None) -> list[str]:
    """``mpirun -np N -H a:8,b:8 --bind-to none -x VAR ... program`` (pure)."""
    argv = ["mpirun", "--allow-run-as-root", "-np", str(len(hosts) * slots_per_host),
            "-H", ",".join(f"{h}:{slots_per_host}" for h in hosts),
            "--bind-to", "none", "--map-by", f"ppr:{slots_per_host}:node"]
    if ssh_port is not None:
        argv += ["--mca", "plm_rsh_args", f"-p {ssh_port}"]
    for key, value in sorted((env or {}).items()):
        argv += ["-x", f"{key}={value}"]
    argv.extend(program)
    return argv
