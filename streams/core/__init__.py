"""Pure pipeline logic over batches: tracks, classification and the alert state machine.

The Faust track agent and the offline ``skyfence analyze`` both run this room's
:class:`~streams.core.engine.Engine`, so the two give the same alerts. Nothing here reads
files after loading its reference tables, touches the network, reads the environment or
looks at the wall clock.

- :mod:`streams.core.engine`: ``Engine`` (batches of positions in; track updates, alerts,
  rejections out; per-aircraft state export/import) and ``EngineOutput``.
- :mod:`streams.core.reorder`: the engine's event-time reorder buffer (``ReorderBuffer``).
- :mod:`streams.core.snapshot`: the per-aircraft state format (version, JSON document and
  compact bytes) and ``StateCodec``, which the engine's ``export_state*`` / ``import_state*`` use.
- :mod:`streams.core.config`: ``EngineConfig``, every tuning constant with its reason.
- :mod:`streams.core.kernels`: the numba kernels (gate, tracks + state machine, sweep).
- :mod:`streams.core.classify`: ``Classifier`` (military / surveillance / ... with evidence).
- :mod:`streams.core.places`: ``Places`` ("83 km SW of Cabo San Lucas").
- :mod:`streams.core.alerts`: alert ids, policy, severity and the ``alert.v1`` document.

Submodules are imported on demand; importing them compiles nothing (numba compiles a
kernel on its first call, or loads it from the on-disk cache).
"""
