"""Drain and resume: what forge does about an unhealthy node, opt-in.

:mod:`.policy` decides (pure: findings + scheduler state + remembered
streaks -> a decision), :mod:`.slurm` and :mod:`.kubernetes` read node state
and carry decisions out, :mod:`.apply` ties them to the history store.
Every drain carries its provenance (``forge:<check>:<run id>: <detail>``) and
forge only ever resumes drains that carry it.
"""
