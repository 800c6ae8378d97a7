"""rs1090's pickled output is loaded without any code-executing deserialisation."""

from __future__ import annotations

import os
import pickle
import pickletools

import pytest
from rs1090 import _rust

from streams.parsers._rs1090 import PlainDataUnpickler, decode_many, decode_one, loads_plain

pytestmark = pytest.mark.unit


class _RunsACommand:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_that_would_run_a_command_is_refused(tmp_path, protocol) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsACommand(str(marker)), protocol=protocol)
    # Sanity: the payload really names os.system (posix.system), so it is a real attack.
    assert b"system" in payload
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        loads_plain(payload)
    assert not marker.exists()


def test_other_globals_are_refused_too() -> None:
    for obj in (eval, print, pickle.loads, complex(1, 2)):
        with pytest.raises(pickle.UnpicklingError):
            loads_plain(pickle.dumps(obj))


def test_real_rs1090_output_loads_identically(rs1090_rows) -> None:
    frames = [r["frame"] for r in rs1090_rows[:2000]]
    raw = bytes(_rust.decode_1090_vec([frames[i : i + 1000] for i in range(0, len(frames), 1000)]))
    # rs1090's payload uses only data opcodes: no GLOBAL/STACK_GLOBAL/REDUCE anywhere.
    ops = {op.name for op, _, _ in pickletools.genops(raw)}
    assert not ops & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "BUILD"}
    ours = PlainDataUnpickler.__mro__  # the class in use is the restricted one
    assert ours[0] is PlainDataUnpickler
    assert loads_plain(raw) == pickle.loads(raw)
    assert decode_many(frames) == pickle.loads(raw)


def test_decode_one_never_panics_into_the_caller() -> None:
    # rs1090 panics (a BaseException) on non-hex or odd-length strings.
    assert decode_one("zz") is None
    assert decode_one("8f39332") is None
    assert decode_many(["8f393322384a02aea63afc43dcba", "zz"])[0]["icao24"] == "393322"
