"""The rooms' import rules, read from the source with ``ast`` (README, "Architecture").

A room is a top-level module or package of ``streams``. Every import counts, at module level
or inside a function, typing-only ones too: a rule broken lazily is still broken.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import streams

pytestmark = pytest.mark.unit

PACKAGE = Path(streams.__file__).parent

# What each room may import from skyfence (besides itself). The pure rooms are closed lists;
# a room not listed here (agents, cli, report, ...) may import any room but cli.
ALLOWED: dict[str, set[str]] = {
    "messages": set(),  # the message model: imported by everyone, imports no one
    "parsers": {"messages"},  # pure parsers: bytes in, positions and dead letters out
    "columns": {"messages"},
    "codec": {"columns", "messages", "parsers"},
    "geo": {"core"},  # the gazetteer (core.places) for descriptions; never the engine's I/O
    "core": {"columns", "geo", "messages", "topics"},  # topics: the partitioner, a stream semantic
    "topics": {"settings"},
    "settings": {"core"},  # checks a rules file with core.rules
    "kafka_io": {"codec", "messages", "security", "settings", "topics"},
    "sinks": {"security", "settings", "messages", "core", "geo"},
    "metrics": set(),
}
# Libraries that do I/O or start a runtime, and the rooms that must not touch them.
FORBIDDEN_LIBS: dict[str, set[str]] = {
    "parsers": {"faust", "aiokafka", "redis", "aiohttp", "numba"},
    "core": {"faust", "aiokafka", "redis", "aiohttp"},
    "geo": {"faust", "aiokafka", "redis", "aiohttp"},
    "messages": {"faust", "aiokafka", "redis", "aiohttp", "numba"},
    "codec": {"faust", "aiokafka", "redis", "aiohttp", "numba"},
    "kafka_io": {"faust"},  # plain aiokafka clients: no Faust in every CLI tool
    "sinks": {"faust", "aiokafka"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                out.add(node.module)
    return out


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(room -> skyfence rooms it imports, room -> third-party top-level packages it imports)."""
    rooms: dict[str, set[str]] = defaultdict(set)
    libs: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        room = _room(_module_name(path))
        for name in _imports(path):
            if name == "streams" or name.startswith("streams."):
                other = _room(name)
                if other and other != room:
                    rooms[room].add(other)
            else:
                libs[room].add(name.split(".")[0])
    return rooms, libs


def test_the_graph_is_read_from_the_source() -> None:
    rooms, libs = graph()
    assert {"parsers", "core", "geo", "agents", "cli", "kafka_io", "sinks"} <= set(rooms)
    assert "faust" in libs["agents"] and "aiokafka" in libs["kafka_io"]  # the reader sees real imports
    assert "core" in rooms["agents"] and "parsers" in rooms["codec"]


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_pure_rooms_import_only_what_they_may(room: str) -> None:
    rooms, _libs = graph()
    assert rooms.get(room, set()) <= ALLOWED[room], f"{room} imports {sorted(rooms[room] - ALLOWED[room])}"


@pytest.mark.parametrize("room", sorted(FORBIDDEN_LIBS))
def test_rooms_keep_off_the_runtimes_they_must_not_start(room: str) -> None:
    _rooms, libs = graph()
    found = libs.get(room, set()) & FORBIDDEN_LIBS[room]
    assert not found, f"{room} imports {sorted(found)}"


def test_only_the_cli_imports_the_cli() -> None:
    rooms, _libs = graph()
    assert sorted(r for r, deps in rooms.items() if "cli" in deps) == []


def test_only_settings_reads_the_environment() -> None:
    """One settings object: nothing else reads os.environ or os.getenv."""
    readers = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
                if isinstance(node.value, ast.Name) and node.value.id == "os":
                    readers.append(_module_name(path))
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                if {a.name for a in node.names} & {"environ", "getenv", "environb"}:
                    readers.append(_module_name(path))
    assert sorted(set(readers)) == ["streams.settings"]
