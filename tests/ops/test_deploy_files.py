"""docker-compose.yml and the Dockerfile, checked without Docker: structure, commands, env names, ports."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

SERVERS = {"auth": "auth_server", "download": "download_server"}
CONFIG_SOURCES = ["mediadl_common/config.py", "mediadl_common/log.py"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(document, dict)
    return document


# Read by CPython itself, not by our config code: README's settings table names PYTHONMALLOC (unset in every
# deploy file since the packed first plan; docs/benchmarks.md), so a deployment that sets it is still known.
INTERPRETER_SETTINGS = {"PYTHONMALLOC"}


def env_names_read_by(package: str) -> set[str]:
    """Every UPPER_CASE setting name that the server's config code (or the shared config), or CPython, reads."""
    names: set[str] = set(INTERPRETER_SETTINGS)
    for source in [*CONFIG_SOURCES, f"{package}/config.py"]:
        names |= set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', (ROOT / source).read_text()))
    return names


def test_services_and_commands_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "auth", "download", "dashboard"} <= set(services)
    assert services["dashboard"]["command"] == ["python", "-m", "dashboard"]
    assert importlib.util.find_spec("dashboard") is not None
    for service, package in SERVERS.items():
        command = services[service]["command"]
        assert command == ["python", "-m", package]
        assert importlib.util.find_spec(package) is not None
        assert (ROOT / package / "__main__.py").is_file()
        probe = services[service]["healthcheck"]["test"]
        assert probe[:4] == ["CMD", "python", "-m", "mediadl_common.healthcheck"]
        assert importlib.util.find_spec(probe[3]) is not None
        assert services[service]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_environment_names_match_the_config_code(compose: dict[str, Any]) -> None:
    common = compose["x-common-env"]
    for service, package in SERVERS.items():
        environment = compose["services"][service]["environment"]
        known = env_names_read_by(package)
        unknown = sorted(set(environment) - known)
        assert not unknown, f"{service} sets variables its config never reads: {unknown}"
        assert set(common) <= set(environment), "the shared block is merged into every server"
    assert "JWT_SECRET_KEY" in common and ":?" in str(common["JWT_SECRET_KEY"]), "no secret -> compose refuses"
    dashboard_env = set(compose["services"]["dashboard"]["environment"])
    unread = sorted(dashboard_env - env_names_read_by("dashboard"))
    assert not unread, f"the dashboard service sets variables its config never reads: {unread}"


def test_ports_match_listen_addresses_and_probes(compose: dict[str, Any]) -> None:
    for service, env_name in (("auth", "AUTH_GRPC_ADDR"), ("download", "DOWNLOAD_GRPC_ADDR")):
        spec = compose["services"][service]
        port = spec["environment"][env_name].rsplit(":", 1)[1]
        assert [p.split(":")[-1] for p in spec["ports"]] == [port]
        assert spec["healthcheck"]["test"][-1].endswith(f":{port}")


def test_database_urls_name_databases_the_init_script_creates(compose: dict[str, Any]) -> None:
    init_sql = (ROOT / "deploy" / "postgres-init.sql").read_text()
    for service, env_name in (("auth", "AUTH_DATABASE_URL"), ("download", "DOWNLOAD_DATABASE_URL")):
        url = compose["services"][service]["environment"][env_name]
        assert url.startswith("postgresql+psycopg2://") and "@postgres:5432/" in url
        assert f"CREATE DATABASE {url.rsplit('/', 1)[1]} " in init_sql
    mount = next(v for v in compose["services"]["postgres"]["volumes"] if "postgres-init.sql" in v)
    assert mount.split(":")[0] == "./deploy/postgres-init.sql"


def test_dockerfile_installs_what_the_project_declares() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = set(re.findall(r"^COPY (\S+) \./", dockerfile, flags=re.MULTILINE))
    for package in packages:
        assert package in copied, f"Dockerfile does not copy {package}"
        assert (ROOT / package).is_dir(), f"{package} is copied but does not exist"
    assert re.search(r"^RUN pip install \. ", dockerfile, flags=re.MULTILINE), "same install as the README's"
    assert "USER mediadl" in dockerfile
    assert Path(ROOT / ".dockerignore").read_text().count(".env") >= 1, "the dev secret never enters the image"
