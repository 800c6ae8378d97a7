"""Hardening without services: no code-executing deserialisation, size limits, secrets kept out of outputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from streams.settings import Secret, Settings, child_env
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.security

PACKAGE = REPO_ROOT / "streams"
# rs1090's Rust core hands back pickled plain data; _rs1090.py loads it with an unpickler
# that refuses every global (tests/parsers/test_rs1090_safety.py attacks it). Nothing else may.
PICKLE_ALLOWED = {PACKAGE / "parsers" / "_rs1090.py"}

DANGEROUS = {
    "pickle": re.compile(r"\b(c?pickle|_pickle|dill|cloudpickle|jsonpickle|shelve)\b"),
    "marshal": re.compile(r"\bmarshal\.loads?\b|^\s*import marshal|from marshal import", re.M),
    "yaml.load": re.compile(r"\byaml\.(load|load_all|unsafe_load|full_load)\s*\("),
    "yaml.Loader": re.compile(r"\b(Unsafe|Full)?Loader\b.*yaml|yaml\.(Unsafe|Full)?Loader\b"),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
    "compile()": re.compile(r"(?<![\w.])compile\s*\(\s*[^)]*['\"](exec|eval)['\"]"),
    "__import__": re.compile(r"__import__\s*\("),
}


def test_no_code_executing_deserialisation_in_the_package() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for name, pattern in DANGEROUS.items():
            if name == "pickle" and path in PICKLE_ALLOWED:
                continue
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(REPO_ROOT)}:{line}: {name}: {text.splitlines()[line - 1].strip()}")
    assert not found, "\n".join(found)
    # the one allowed use really is the restricted unpickler, not pickle.loads
    allowed = (PACKAGE / "parsers" / "_rs1090.py").read_text()
    assert "pickle.loads(" not in allowed and "find_class" in allowed


def test_the_grep_would_catch_each_pattern() -> None:
    """The patterns above are not vacuous: each flags a line that really deserialises code."""
    samples = {
        "pickle": "import pickle",
        "marshal": "obj = marshal.loads(data)",
        "yaml.load": "doc = yaml.load(text, Loader=yaml.Loader)",
        "eval/exec": "value = eval(text)",
        "__import__": "mod = __import__(name)",
    }
    for name, line in samples.items():
        assert DANGEROUS[name].search(line), name
    assert not DANGEROUS["eval/exec"].search("await asyncio.create_subprocess_exec(cmd)")
    assert not DANGEROUS["yaml.load"].search("doc = yaml.safe_load(text)")


def test_faust_moves_raw_bytes_only() -> None:
    """Faust's default codecs include pickle; every topic and table here must be raw bytes."""
    from streams.app import create_app

    settings = Settings(store="memory://", data_dir=str(REPO_ROOT / ".cache" / "test-hardening"))
    app, topics = create_app(settings)
    assert app.conf.key_serializer == "raw" and app.conf.value_serializer == "raw"
    for topic in vars(topics).values():
        assert topic.key_serializer == "raw" and topic.value_serializer == "raw", topic
    table = app.Table("probe", default=None, key_type=bytes, value_type=bytes)
    assert table.key_serializer in (None, "raw") and table.value_serializer in (None, "raw")
    assert app.conf.web_bind == "127.0.0.1", "the web page listens on loopback unless configured otherwise"


def _cli(env_extra: dict[str, str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = child_env()
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, input=stdin, timeout=120)


SECRET_ENV = {
    "SKYFENCE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "SKYFENCE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "SKYFENCE_KAFKA_SASL_USERNAME": "alice",
    "SKYFENCE_KAFKA_SASL_PASSWORD": "kafka-Secret-31c9",
    "SKYFENCE_REDIS_USERNAME": "bob",
    "SKYFENCE_REDIS_PASSWORD": "redis-Secret-77ad",
    "SKYFENCE_REDIS_URL": "rediss://bob:url-Secret-9e01@127.0.0.1:6380/0",
}
SECRET_VALUES = ("kafka-Secret-31c9", "redis-Secret-77ad", "url-Secret-9e01")


@pytest.mark.parametrize("args", [["--help"], ["worker", "--help"], ["replay", "--help"], ["settings"],
                                  ["settings", "--markdown"]])
def test_secrets_are_never_printed(args: list[str]) -> None:
    proc = _cli(SECRET_ENV, *args)
    out = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 0, out
    for secret in SECRET_VALUES:
        assert secret not in out
    if args == ["settings"]:
        assert out.count("********") >= 3, out  # both passwords and the URL's


def test_configuration_errors_mask_passwords() -> None:
    proc = _cli({**SECRET_ENV, "SKYFENCE_REDIS_URL": "ftp://bob:url-Secret-9e01@127.0.0.1/0"}, "settings")
    out = (proc.stdout + proc.stderr).decode()
    assert proc.returncode == 2 and "SKYFENCE_REDIS_URL" in out and "Traceback" not in out, out
    assert "url-Secret-9e01" not in out
    s = Settings(kafka_sasl_password=Secret("kafka-Secret-31c9"), redis_url=SECRET_ENV["SKYFENCE_REDIS_URL"])
    assert not any(secret in repr(s) or secret in str(s) for secret in SECRET_VALUES)


def test_log_redaction_scrubs_every_configured_secret() -> None:
    import logging

    from streams.logs import RedactSecrets, secrets_of

    s = Settings.from_env(SECRET_ENV)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "login %s to %s failed", (
        "kafka-Secret-31c9", "rediss://bob:url-Secret-9e01@h/0 redis-Secret-77ad"), None)
    RedactSecrets(secrets_of(s)).filter(record)
    assert not any(secret in record.getMessage() for secret in SECRET_VALUES), record.getMessage()


def test_oversize_input_is_a_dead_letter_on_ingest(tmp_path: Path) -> None:
    """A 2 MiB line between real SBS lines: one `oversize` dead letter, the real lines all parsed."""
    real = (REPO_ROOT / "tests" / "data" / "sbs1_msgs.txt").read_bytes().splitlines(keepends=True)[:400]
    huge = b"MSG,3,,,4B1908,,,,,,," + b"9" * (2 * 1024 * 1024) + b"\n"
    data = b"".join(real[:200]) + huge + b"".join(real[200:])
    path = tmp_path / "oversize.sbs"
    path.write_bytes(data)
    (tmp_path / "clean.sbs").write_bytes(b"".join(real))
    clean = _cli({}, "ingest", str(tmp_path / "clean.sbs"), "--format", "sbs", "--stdout")
    proc = _cli({"SKYFENCE_MAX_MESSAGE_BYTES": str(1024 * 1024)}, "ingest", str(path), "--format", "sbs",
                "--stdout")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    dead = [orjson.loads(x) for x in proc.stderr.splitlines() if x.startswith(b"{")]
    assert [d["reason"] for d in dead] == ["oversize"], dead
    assert len(dead[0].get("raw_text", "")) <= 4096, "an oversize input is not carried around whole"

    def fixes(out: bytes) -> list[tuple]:
        # SBS-1 lines here carry no date, so event_time is the clock's: compare the rest
        return [(d["icao24"], d["lat"], d["lon"], d["alt_baro_ft"]) for d in map(orjson.loads, out.splitlines())]

    assert fixes(clean.stdout) and fixes(proc.stdout) == fixes(clean.stdout), "good lines around it are unaffected"
