"""``skyfence rules``: check an alert rules file; with a recording, which rules fire on its alerts."""

from __future__ import annotations

import argparse

from streams.settings import Settings, SettingsError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("check",))
    p.add_argument("rules", help="TOML rules file (see streams/core/rules.py)")
    p.add_argument("recording", nargs="?", default=None, help="a recorded file to explain the rules on")
    p.add_argument("--format", "-f", dest="fmt", default=None, help="input format of the recording (default: guessed)")
    p.add_argument("--matched-only", action="store_true", help="list only the alerts some rule matched")
    p.add_argument("--json", action="store_true", help="one JSON line per alert")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Check a rules file; with a recording, say which rules fire on which of its alerts."""
    import asyncio
    from pathlib import Path

    import orjson

    from streams.analyze import analyze_file
    from streams.core.rules import RulesError, judge, load_rules
    from streams.readers import sniff_format
    from streams.wiring import build_engine

    try:
        rules = load_rules(args.rules)
    except RulesError as e:
        raise SettingsError(str(e)) from None
    user = [r for r in rules.rules if not r.builtin]
    if not args.recording:
        print(f"{args.rules}: {len(user)} rules OK (after the built-in: "
              f"{', '.join(r.name for r in rules.rules if r.builtin)})")
        for r in rules.rules:
            what = ", ".join(f"{k}={list(v)}" for k, v in r.match.items()) or "everything"
            act = [f"severity {r.severity}"] if r.severity else []
            act += [f"channel {r.channel}"] if r.channel else []
            act += ["exclude"] if r.exclude else []
            print(f"  {r.name}{' (built-in)' if r.builtin else ''}: {what} -> {', '.join(act)}")
        return 0
    path = Path(args.recording)
    if not path.is_file():
        raise SettingsError(f"rules check: no such file {args.recording}")
    fmt = args.fmt or sniff_format(path)
    # Every alert of the recording under policy "all" and no rules: then each is judged, so the
    # output also shows what the rules would let out that the policy holds back, and what they drop.
    engine = build_engine(settings.replace(rules_file=""), alert_policy="all")
    result = asyncio.run(analyze_file(str(path), fmt, engine, close_all=True,
                                      max_message_bytes=settings.max_message_bytes, partitions=settings.partitions))
    from streams.core.alerts import admitted
    from streams.core.classify import Classification

    fired: dict[str, int] = {r.name: 0 for r in rules.rules}
    for a in result.alerts:
        if a.get("schema") not in ("alert.v1", "pattern.v1"):
            continue
        v = judge(rules, a)
        for n in v.rules:
            fired[n] += 1
        c = a.get("classification") or {}
        by_policy = admitted(settings.alert_policy, Classification(str(a["icao24"]), str(c.get("category", "unknown")),
                                                                    0.0, ()), bool(a.get("watchlisted")))
        if a.get("schema") == "alert.v1":
            out = "excluded" if v.exclude else ("sent" if by_policy or v.admits else "held back by the policy")
        else:  # pattern alerts: the rules change severity, channels, exclusion only
            out = "excluded" if v.exclude else ("sent" if by_policy else "held back by the policy")
        row = {"event_id": a["event_id"], "icao24": a["icao24"], "callsign": a.get("callsign"),
               "transition": a["transition"], "event_time_iso": a.get("event_time_iso"), "rules": list(v.rules),
               "severity": v.severity or a.get("severity"), "channels": list(v.channels), "outcome": out}
        if args.json:
            print(orjson.dumps(row).decode())
        elif v.rules or not args.matched_only:
            names = ", ".join(v.rules) or "no rule"
            print(f"{row['event_time_iso']}  {a['icao24']} {a.get('callsign') or '-':8s} {a['transition']:16s} "
                  f"{names} -> {out}, severity {row['severity']}"
                  + (f", channels {', '.join(v.channels)}" if v.channels else ""))
    if not args.json:
        print(f"\n{path.name}: {len(result.alerts)} alerts (policy all); rules fired: "
              + ", ".join(f"{n} x{k}" for n, k in fired.items()))
    return 0
