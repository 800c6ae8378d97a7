"""The worker's allocator settings (``streams.agents.tune_malloc``), on this machine's glibc.

Each case runs in a fresh interpreter: the mmap threshold is per process and, once set,
stays set. The default run is the control: it shows the behaviour the setting is there to
stop (freed 2 MiB arrays kept as heap pages), so the tuned run's drop is the setting's doing.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.unit

PROBE = textwrap.dedent('''
    import sys
    import numpy as np
    from streams.agents import tune_malloc

    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024

    tuned = tune_malloc() if sys.argv[1] == "tuned" else False
    big = np.ones(1 << 20)  # 8 MiB mapped and freed: glibc raises its threshold to that
    del big
    base = rss()
    arrays, pins = [], []
    for _ in range(20):
        arrays.append(np.ones(1 << 18))  # 2 MiB each, written
        pins.append(b"x" * 100_000)  # a heap block after each keeps the heap's top in use
    held = rss()
    del arrays
    print(tuned, held - base, rss() - base)
''')


def probe(mode: str) -> tuple[bool, float, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    tuned, held, after = out.stdout.split()
    return tuned == "True", float(held), float(after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc only")
def test_freed_large_arrays_go_back_to_the_os_once_the_threshold_is_fixed() -> None:
    tuned, held, after = probe("tuned")
    assert tuned and held > 35  # 40 MiB of arrays were resident
    assert after < 10, (held, after)  # and left with their frees
    control, held, after = probe("default")
    assert not control and held > 35
    assert after > 30, (held, after)  # glibc's moving threshold kept them as heap pages
