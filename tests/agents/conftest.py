"""Fixtures of the agent tests: the core tests' reference tables and real recordings."""

from tests.core.conftest import boe004, classifier, dal1812, make_engine, places  # noqa: F401  (re-exported fixtures)
