"""Builds the engine from settings: the one place where files meet the pure core.

This module owns loading the geofence, the classifier's reference tables and the
gazetteer, and assembling ``streams.core.engine.Engine`` with an ``EngineConfig``
derived from ``Settings``. The worker's track agent and ``skyfence analyze`` both call
``build_engine``, so the two run identical logic with identical parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.settings import Settings

if TYPE_CHECKING:  # typing only: importing these at run time compiles numba, which --help must not
    from streams.core.config import EngineConfig
    from streams.core.engine import Engine
    from streams.core.stages import StagePartition
    from streams.geo import Geofence


def engine_config(settings: Settings, alert_policy: str | None = None) -> EngineConfig:
    from streams.core.config import EngineConfig

    return EngineConfig(
        alert_policy=alert_policy or settings.alert_policy,
        watchlist=settings.watchlist_set,
        reorder_tolerance_s=settings.reorder_tolerance_s,
        on_station_alert_m=settings.on_station_nm * 1852.0,
        dark_after_s=settings.dark_after_s,
    )


def load_geofence(settings: Settings, warm: bool = True) -> Geofence:
    from streams.geo import Geofence

    # One hour of prediction: "approaching" needs predicted entry within 15-20 min
    # (EngineConfig.predict_enter_s / predict_leave_s), an hour reports entry for anything in the
    # 50 nm approach ring down to 50 kt, and it costs about 30 % less geofence time than the 2 h default.
    fence = Geofence.load(rings_nm=settings.rings, user_fences=settings.fences_file or None, horizon_s=3600.0)
    if warm:
        fence.warm()
    return fence


def build_engine(settings: Settings, alert_policy: str | None = None, geofence: Geofence | None = None) -> Engine:
    from streams.core.classify import Classifier
    from streams.core.engine import Engine
    from streams.core.places import Places

    fence = geofence if geofence is not None else load_geofence(settings)
    from streams.core.rules import load_rules

    classifier = Classifier.load(extra_csv=settings.aircraft_csv or None, watchlist=settings.watchlist_set)
    return Engine(engine_config(settings, alert_policy), fence, classifier, Places.load(),
                  rules=load_rules(settings.rules_file or None))


def build_stages(engine: Engine, settings: Settings | None = None,
                 partitions: int | None = None) -> tuple[StagePartition, StagePartition]:
    """The coverage stage and the mission ledger as :class:`streams.core.stages.StagePartition`
    objects, with the engine's geofence and gazetteer and the settings' windows, fed from
    ``partitions`` positions partitions (default: the settings')."""
    from streams.core.stages import COVERAGE, MISSIONS, StagePartition

    n = partitions or (settings.partitions if settings is not None else 8)
    return (StagePartition(COVERAGE, coverage_stage(engine), n),
            StagePartition(MISSIONS, mission_ledger(settings), n))


def coverage_stage(engine: Engine) -> Any:
    import numpy as np

    from streams.core.coverage import CoverageConfig, CoverageStage

    fence = engine.geofence

    def score(lat: float, lon: float) -> tuple[bool, float]:
        nan = np.full(1, np.nan)
        sc = fence.score(np.array([lat]), np.array([lon]), nan, nan, nan, closest_approach=False)
        return bool(np.asarray(sc.inside)[0]), float(np.asarray(sc.dist_m)[0])

    return CoverageStage(CoverageConfig(dark_after_s=engine.config.dark_after_s), score=score,
                         describe=engine.places.describe)


def mission_ledger(settings: Settings | None) -> Any:
    from streams.core.missions import LedgerConfig, MissionLedger

    if settings is None:
        return MissionLedger(LedgerConfig())
    return MissionLedger(LedgerConfig(window_days=settings.activity_window_days,
                                      baseline_days=settings.activity_baseline_days))
