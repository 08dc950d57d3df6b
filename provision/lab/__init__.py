"""The local container lab: Debian 13 systemd nodes on podman, reachable over SSH on 127.0.0.1.

It is how forge is tried on a laptop and how the roles are proved in CI. The
modules split one way: :mod:`.config` (what a lab is), :mod:`.podman` (argv
builders, pure), :mod:`.image` (the node image), :mod:`.keys` (SSH key and
verified host keys), :mod:`.sitespec` (the lab's site spec), :mod:`.mirror`
(a local package mirror for the air-gapped path) and :mod:`.lab` (up, down,
status).
"""
