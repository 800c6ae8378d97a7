"""Alert documents (``schemas/alert.v1.json``): ids, severity, policy and wording.

This module owns what an alert says, given a state-machine event from
:func:`streams.core.kernels.track_step`: the stable alert id of its episode, whether the
alert policy lets it out, its severity, and the human description. Pure functions.

Severity (``interest`` = military or surveillance aircraft, or on the watchlist):

=============================  ==================  =============
transition                      interest            otherwise
=============================  ==================  =============
entered; updated while inside   high                low
approaching; updated outside    medium              info
exited                          medium              info
closed, lost while inside       medium              low
closed (receded / other)        low                 info
=============================  ==================  =============
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from typing import Any

from streams.core import kernels as K
from streams.core.classify import Classification

ALERT_SCHEMA = "alert.v1"
SOVEREIGN_ZONE = "sovereign"
SEVERITIES = ("info", "low", "medium", "high")

_VERB = {
    "approaching": "is approaching",
    "entered": "entered",
    "updated": "is still tracked near",
    "exited": "left",
    "closed": "episode closed for",
}


def alert_id(icao24: str, zone: str, episode_start: float) -> str:
    """Stable id of one episode: same input, same id, across replays and restarts."""
    key = f"{icao24}|{zone}|{episode_start:.3f}".encode()
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:20]


def admitted(policy: str, cls: Classification, watchlisted: bool) -> bool:
    """Does the alert policy let this aircraft's alerts out?"""
    return policy == "all" or cls.is_military_or_surveillance or watchlisted


def severity(transition: str, state_before: str, interest: bool, close_reason: str | None) -> str:
    if transition == "entered" or (transition == "updated" and state_before == "inside"):
        return "high" if interest else "low"
    if transition in ("approaching", "updated", "exited"):
        return "medium" if interest else "info"
    if transition == "closed" and close_reason == "timeout" and state_before == "inside":
        return "medium" if interest else "low"
    return "low" if interest else "info"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def opt(x: float) -> float | None:
    """JSON-safe float: NaN/inf become null."""
    return x if math.isfinite(x) else None


def build_alert(
    *,
    ev: Any,
    icao24: str,
    callsign: str | None,
    zone: str,
    ring_name: str | None,
    country: str | None,
    cls: Classification,
    watchlisted: bool,
    policy: str,
    description: str | None,
    closest_description: str | None,
    hole_s: float = math.inf,
    first_fix: tuple[float, ...] | None = None,
    squawk: str | None = None,
) -> dict[str, Any]:
    """The alert.v1 document for one event row ``ev`` (see ``kernels.E_*``).

    ``hole_s``: silence that counts as a coverage hole (``silence_s`` is set only then);
    ``first_fix``: (time, lat, lon) of the first position after the hole when the row was moved
    to the estimated crossing inside it (:mod:`streams.core.crossings`), else None."""
    code = int(ev[K.E_CODE])
    transition = K.TRANSITION_NAMES[code]
    prev = K.STATE_NAMES[int(ev[K.E_PREV])]
    reason = K.CLOSE_REASONS[int(ev[K.E_REASON])] or None
    ep_start = float(ev[K.E_EP_START])
    aid = alert_id(icao24, zone, ep_start)
    seq = int(ev[K.E_SEQ])
    interest = cls.is_military_or_surveillance or watchlisted
    sev = severity(transition, prev, interest, reason)
    t = float(ev[K.E_T])
    dist = opt(float(ev[K.E_DIST]))
    who = _who(icao24, callsign, cls)
    where = description or f"{float(ev[K.E_LAT]):.3f}, {float(ev[K.E_LON]):.3f}"
    zone_label = "Mexican sovereign airspace" if zone == SOVEREIGN_ZONE else f"fence '{zone}'"
    if transition == "closed":
        why = {"timeout": "no positions", "receded": "moved away", "exited": "exited"}.get(reason or "", "")
        headline = f"{who}: {zone_label} episode closed ({why}), last {where}"
    elif transition == "updated":
        headline = f"{who} {'inside' if prev == 'inside' else 'approaching'} {zone_label}, {where}"
    else:
        headline = f"{who} {_VERB[transition]} {zone_label}, {where}"
    if dist is not None and zone == SOVEREIGN_ZONE and transition in ("approaching", "updated", "closed"):
        headline += f" ({abs(dist) / 1000:.0f} km {'inside' if dist < 0 else 'from'} the boundary)"
    status = "closed" if transition in ("exited", "closed") else "open"
    gap = float(ev[K.E_GAP])
    hole = gap if gap >= hole_s else math.nan  # the normal reporting interval is no "silence"
    estimated = first_fix is not None
    crossing = None
    if first_fix is not None:
        headline += f" (estimated: crossed during a {gap / 60:.0f}-min coverage gap)"
        crossing = {
            "estimated": True,
            "gap_s": gap,
            "before": {"event_time": float(ev[K.E_PREV_T]), "lat": float(ev[K.E_PREV_LAT]),
                       "lon": float(ev[K.E_PREV_LON]), "distance_to_boundary_m": opt(float(ev[K.E_PREV_DIST]))},
            "after": {"event_time": first_fix[0], "lat": first_fix[1], "lon": first_fix[2]},
        }
    return {
        "schema": ALERT_SCHEMA,
        "alert_id": aid,
        "event_id": f"{aid}:{seq}",
        "seq": seq,
        "icao24": icao24,
        "callsign": callsign,
        "squawk": squawk,
        "transition": transition,
        "state_before": prev,
        "status": status,
        "close_reason": reason,
        "zone": zone,
        "zone_kind": "sovereign" if zone == SOVEREIGN_ZONE else "fence",
        "ring": ring_name,
        "event_time": t,
        "event_time_iso": iso(t),
        "confirmed_event_time": float(ev[K.E_ISSUED_T]),
        "episode_start": ep_start,
        "position": {
            "lat": float(ev[K.E_LAT]),
            "lon": float(ev[K.E_LON]),
            "alt_ft": opt(float(ev[K.E_ALT])),
            "ground_speed_kt": opt(float(ev[K.E_GS])),
            "track_deg": opt(float(ev[K.E_TRK])),
        },
        "distance_to_boundary_m": dist,
        "bearing_to_boundary_deg": opt(float(ev[K.E_BEAR])),
        # A prediction of entry means nothing once the aircraft has left or the episode closed.
        "predicted_entry_s": None if transition in ("exited", "closed") else opt(float(ev[K.E_TTE])),
        "airspace_country": country,
        "closest_approach": {
            "distance_m": opt(float(ev[K.E_BEST_D])),
            "event_time": opt(float(ev[K.E_BEST_T])),
            "lat": opt(float(ev[K.E_BEST_LAT])),
            "lon": opt(float(ev[K.E_BEST_LON])),
            "alt_ft": opt(float(ev[K.E_BEST_ALT])),
            "description": closest_description,
        },
        "entered": bool(ev[K.E_ENTERED] == 1.0),
        "crossing_observed": bool(ev[K.E_CROSSING] == 1.0),
        "silence_s": opt(hole),
        "crossing_estimated": estimated,
        "crossing": crossing,
        "classification": cls.to_dict(),
        "watchlisted": watchlisted,
        "severity": sev,
        "policy": policy,
        "description": description,
        "headline": headline,
        # set by the alert rules (streams.core.rules): names of the rules that matched, extra channels
        "rules": [],
        "channels": [],
    }


def _who(icao24: str, callsign: str | None, cls: Classification) -> str:
    parts = []
    if cls.type_description and cls.category in ("military", "surveillance", "government"):
        parts.append(cls.type_description)
    elif cls.category in ("military", "surveillance"):
        parts.append(cls.category.capitalize() + " aircraft")
    parts.append(icao24.upper())
    if callsign:
        parts.append(f"({callsign})")
    return " ".join(parts)
