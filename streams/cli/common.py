"""Helpers several subcommands share: the alert-policy option, and reaching the broker."""

from __future__ import annotations

import argparse

from streams.settings import Settings, SettingsError


def policy_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--alert-policy",
        dest="alert_policy",
        choices=("military", "all"),
        default=None,
        help="which aircraft raise alerts: military/surveillance + watchlist (default), or all",
    )


def ensure_topics_or_explain(settings: Settings) -> None:
    """Create the topics, or fail in one line that says how to get a broker."""
    import asyncio

    asyncio.run(ensure_topics_explained(settings))


async def ensure_topics_explained(settings: Settings) -> None:
    """:func:`ensure_topics_or_explain` inside a running event loop (ingest, replay)."""
    from streams.kafka_io import ensure_topics

    try:
        await ensure_topics(settings)
    except SettingsError:
        raise  # already one clear line (refused credentials or TLS)
    except Exception as exc:
        raise SettingsError(
            f"cannot reach the Kafka broker at SKYFENCE_BROKER={settings.broker} ({type(exc).__name__}: {exc}); "
            "start it with `skyfence stack up` or point SKYFENCE_BROKER at a running broker"
        ) from None
