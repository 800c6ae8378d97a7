"""Geofence API contracts: cheap import, lazy compilation, input checking."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from streams.geo.fence import Geofence

pytestmark = pytest.mark.unit


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


def test_importing_the_package_touches_neither_numba_nor_data():
    assert _run("import sys, streams.geo; print('numba' in sys.modules)") == "False"


def test_importing_every_module_compiles_nothing():
    code = (
        "import streams.geo.kernels as K, streams.geo.fence, streams.geo.describe, streams.geo.index\n"
        "from numba.core.registry import CPUDispatcher\n"
        "d = [v for v in vars(K).values() if isinstance(v, CPUDispatcher)]\n"
        "print(len(d), sum(len(x.signatures) for x in d))"
    )
    n, compiled = _run(code).split()
    assert int(n) >= 20 and compiled == "0"


def test_lazy_exports_resolve():
    import streams.geo as geo

    assert geo.Geofence is Geofence
    assert geo.COUNTRY_NAMES[1] == "MEX"
    with pytest.raises(AttributeError):
        _ = geo.NoSuchThing  # type: ignore[attr-defined]


def test_load_is_cached_per_process_and_rings_are_checked(fence):
    again = Geofence.load(rings_nm=(5.0,))
    assert again._z is fence._z
    assert again.zone_names() == ["MEX sovereign", "within 5 nm (9 km) beyond the sovereign limit"]
    for bad in [(50.0, 12.0), (0.0,), (12.0, 12.0), (float("nan"),)]:
        with pytest.raises(ValueError, match="ring distances"):
            Geofence.load(rings_nm=bad)


def test_score_checks_shapes_and_marks_invalid_rows(fence):
    with pytest.raises(ValueError, match="lon has 1 values, lat has 2"):
        fence.score([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        fence.score(np.zeros((2, 2)), np.zeros((2, 2)))
    empty = fence.score([], [])
    assert len(empty) == 0
    s = fence.score([np.nan, 91.0, 20.0, 20.0], [-100.0, -100.0, 181.0, -100.0])
    assert s.valid.tolist() == [False, False, False, True]
    assert np.isnan(s.dist_m[:3]).all() and (s.zone[:3] == -1).all()
    assert s.country_names()[:3] == ["UNK"] * 3 and not s.inside[:3].any()


def test_scores_are_dtype_stable(fence):
    s = fence.score([20.0], [-100.0], [1.0], [300.0], [10.0])
    assert s.inside.dtype == np.bool_ and s.zone.dtype == np.int8 and s.country.dtype == np.int8
    assert s.dist_m.dtype == np.float64 and s.fences.dtype == np.bool_
