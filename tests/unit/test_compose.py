"""docker-compose.yml (and the image it builds) name only settings the code reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from broker.settings import ENV_VARS, LOG_BACKENDS, ROLES, Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _jigsaw_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if any(k.startswith("JIGSAW_") for k in _environment(service))
    }


def test_compose_parses_and_runs_kafka_and_jigsaw() -> None:
    """The file is valid YAML with a Kafka service (KRaft, pinned) and a Jigsaw service built here."""
    compose = _compose()
    services = compose["services"]

    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert _environment(services["kafka"])["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["jigsaw"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / services["jigsaw"]["build"]["context"] / "deploy" / "Dockerfile").is_file()
    assert services["jigsaw"]["command"][:2] == ["jigsaw", "serve"]
    assert "kafka" in services["jigsaw"]["depends_on"]


def test_every_jigsaw_variable_in_compose_is_one_the_code_reads() -> None:
    """Every JIGSAW_* name in docker-compose.yml is in broker.settings.ENV_VARS."""
    for name, service in _jigsaw_services(_compose()).items():
        unknown = sorted(k for k in _environment(service) if k.startswith("JIGSAW_") and k not in ENV_VARS)
        assert unknown == [], f"service {name} sets variables Jigsaw does not read: {unknown}"


def test_compose_settings_build_a_kafka_configuration() -> None:
    """The Jigsaw service's environment is valid settings for a Kafka-backed Jigsaw on the kafka service."""
    compose = _compose()
    for service in _jigsaw_services(compose).values():
        env = _environment(service)
        assert env["JIGSAW_LOG_BACKEND"] in LOG_BACKENDS
        assert set(env.get("JIGSAW_ROLES", ",".join(ROLES)).split(",")) <= set(ROLES)

        settings = Settings.from_env(env)

        assert settings.log_backend == "kafka"
        host, _, port = settings.kafka_bootstrap.partition(":")
        assert host in compose["services"], f"bootstrap {settings.kafka_bootstrap} names no service"
        kafka_env = _environment(compose["services"][host])
        assert f"://{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
        assert settings.http_host == "0.0.0.0"


def test_dockerfile_sets_only_variables_the_code_reads() -> None:
    """Every JIGSAW_* name the Dockerfile sets is in broker.settings.ENV_VARS."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    names = set(re.findall(r"\b(JIGSAW_[A-Z0-9_]+)=", text))

    assert names, "the Dockerfile sets no JIGSAW_* variables"
    assert sorted(names - set(ENV_VARS)) == []


def test_the_scale_out_compose_runs_every_role_twice_with_real_settings() -> None:
    """deploy/compose.scale-out.yml runs gateway, router, dispatcher and views as separate services, two of each,
    each naming exactly its role and only variables the code reads, on Kafka and PostgreSQL."""
    data = yaml.safe_load((ROOT / "deploy" / "compose.scale-out.yml").read_text())
    services = data["services"]
    assert {"kafka", "postgres"} <= set(services)
    for role in ROLES:
        service = services[role]
        env = _environment(service)
        assert env["JIGSAW_ROLES"] == role
        assert service["deploy"]["replicas"] >= 2
        unknown = sorted(k for k in env if k.startswith("JIGSAW_") and k not in ENV_VARS)
        assert unknown == [], f"{role} sets variables Jigsaw does not read: {unknown}"
        assert env["JIGSAW_LOG_BACKEND"] == "kafka" and env["JIGSAW_STORE"] == "postgresql"
        assert env["JIGSAW_KAFKA_BOOTSTRAP"].split(":")[0] in services
        assert service["command"][:2] == ["jigsaw", "serve"]
