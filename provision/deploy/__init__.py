"""``forge deploy``: run the playbooks on a site through ansible-runner.

:mod:`.settings` (Ansible tuning, pure), :mod:`.events` (runner events ->
per-host results, pure), :mod:`.rundir` (the run directory), :mod:`.resume`
(what a resumed run targets), :mod:`.progress` and :mod:`.summary` (what the
user sees) and :mod:`.driver` (the one place that starts ansible-runner).
"""
