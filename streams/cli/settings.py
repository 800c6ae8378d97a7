"""``skyfence settings``: print every setting, its value (secrets masked) and meaning."""

from __future__ import annotations

import argparse

from streams.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--markdown", action="store_true", help="print the README's configuration table")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.markdown:
        from streams.settings import settings_doc_table

        print(settings_doc_table())
        return 0
    width = max(len(k) for k, _, _ in settings.public_items())
    for var, value, doc in settings.public_items():
        print(f"{var:<{width}}  {value:<28}  {doc}")
    # Where the local stack and the worker keep their files, resolved (a per-user folder when
    # installed from a wheel, the checkout when run from one).
    print(f"\nworkdir: {settings.workdir_path}  (stack: {settings.resolve(settings.stack_dir)}, "
          f"Kafka jars: {settings.resolve('.cache/kafka')}, worker data: {settings.resolve(settings.data_dir)})")
    return 0
