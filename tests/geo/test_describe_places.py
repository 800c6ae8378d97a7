"""``skyfence fences check`` gives the alerts' own place sentence, in text and in JSON."""

from __future__ import annotations

import pytest

from streams.core.places import destination
from streams.geo.describe import check_lines, describe_points, format_point

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fence():
    from streams.geo import Geofence

    return Geofence.load()


def test_cabo_point_description_in_text_and_json(fence):
    lat, lon = destination(22.89088, -109.91238, 225.0, 83_000.0)
    [d] = describe_points(fence, [lat], [lon])
    assert d["description"] == "83 km SW of Cabo San Lucas"
    assert "\n  83 km SW of Cabo San Lucas\n" in format_point(d)
    [line] = list(check_lines(fence, [f"{lat},{lon}"]))
    assert isinstance(line, dict) and line["description"] == "83 km SW of Cabo San Lucas"


def test_invalid_point_has_no_description(fence):
    [d] = describe_points(fence, [95.0], [0.0])
    assert not d["valid"] and "description" not in d
