"""Periodic health sweeps: light, non-disruptive probes on every node, judged and remembered.

:mod:`.probes` (commands + pure parsers, the quick/full profiles),
:mod:`.expect` (what a node must show, compiled from the spec),
:mod:`.collect` (one node, local or from a launcher's output),
:mod:`.fanout` (every node over the SSH launcher), :mod:`.result` (the
verdict), :mod:`.run` (collect -> history -> actions), :mod:`.report`,
:mod:`.analysis` (the analyzer with a history baseline), :mod:`.install`
(timer/cron, logrotate, forge-health) and :mod:`.nhc` (Slurm HealthCheckProgram).
"""
