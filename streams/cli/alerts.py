"""``skyfence alerts``: read alerts from the Redis Stream as a consumer-group member."""

from __future__ import annotations

import argparse
import sys

from streams.cli.format import format_alert
from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--follow", action="store_true", help="keep waiting for new alerts")
    p.add_argument("--group", default="skyfence-cli", help="consumer group (each group sees every alert)")
    p.add_argument("--consumer", default=None, help="member name in the group (default: host name)")
    p.add_argument("--json", action="store_true", help="one alert per line, fields as in schemas/alert.v1.json")
    p.add_argument("--limit", type=int, default=0, help="stop after this many alerts")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    import orjson

    from streams.sinks.subscriber import AlertSubscriber

    async def go() -> int:
        n = 0
        async with AlertSubscriber(settings, group=args.group, consumer=args.consumer) as sub:
            async for eid, alert in sub.alerts(follow=args.follow):
                if args.json:
                    sys.stdout.write(orjson.dumps(alert).decode() + "\n")
                else:
                    sys.stdout.write(format_alert(alert) + "\n")
                sys.stdout.flush()
                n += 1
                if args.limit and n >= args.limit:
                    await sub.ack(eid)  # shown: settled before leaving the loop, or the next run shows it again
                    break
        return 0

    return asyncio.run(go())
