"""Acceptance checks: declarations (:mod:`.base`), the catalog (:mod:`.registry`), the engine
that runs them over a launcher (:mod:`.engine`), typed options (:mod:`.options`) and the
service that plans and records a run (:mod:`.service`; run directories: :mod:`provision.runs`)."""
