"""Where the repository is, for tests, benchmarks and scripts (the package never asks)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
