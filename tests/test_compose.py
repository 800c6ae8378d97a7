"""docker-compose.yml agrees with the settings module (no Docker engine here to run it)."""

from __future__ import annotations

import pytest
import yaml

from streams.cli import build_parser
from streams.settings import Settings
from tests.paths import REPO_ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_services_present(compose: dict) -> None:
    assert {"kafka", "redis", "worker", "replay"} <= set(compose["services"])
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:4.")
    assert compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


@pytest.mark.parametrize("service", ["worker", "replay"])
def test_environment_is_valid_settings_that_reach_the_services(compose: dict, service: str) -> None:
    env = compose["services"][service]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in env.items()})  # unknown or bad names raise
    kafka = compose["services"]["kafka"]["environment"]
    assert any(adv.endswith(settings.bootstrap) for adv in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    redis_port = compose["services"]["redis"]["ports"][0].split(":")[-1]
    assert settings.redis_url == f"redis://redis:{redis_port}/0"
    assert settings.store == "rocksdb://"


def test_worker_is_scalable_and_replay_one_shot(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker, "a fixed name/port blocks --scale"
    assert str(compose["services"]["replay"]["restart"]) == "no"


@pytest.mark.parametrize("service", ["worker", "replay"])
def test_commands_are_real_subcommands(compose: dict, service: str) -> None:
    cmd = compose["services"][service]["command"]
    assert cmd[0] == "skyfence"
    args = build_parser(cmd[1:]).parse_args(cmd[1:])
    assert callable(args.handler)
    for path in cmd[1:]:
        if path.startswith("/app/"):
            assert (REPO_ROOT / path.removeprefix("/app/")).exists(), path
