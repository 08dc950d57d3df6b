"""Acceptance checks: declarations (:mod:`.base`), the catalog (:mod:`.registry`), the engine
that runs them over a launcher (:mod:`.engine`) and the run directory (:mod:`.rundir`)."""
