"""The TLS variant of docker-compose, checked without Docker: it sets only settings the code reads, names the
files devcerts writes, and those files make a working mTLS server and caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mediadl_common.devcerts import main as devcerts
from tests.conftest import ROOT
from tests.ops.test_deploy_files import env_names_read_by

TLS_NAMES = {
    *(f"{p}_TLS_{s}" for p in ("AUTH", "DOWNLOAD") for s in ("CERT_FILE", "KEY_FILE", "CLIENT_CA_FILE")),
    "TLS_CA_FILE",
    "TLS_CLIENT_CERT_FILE",
    "TLS_CLIENT_KEY_FILE",
}
MOUNT = "/run/mediadl-tls/"


def overlay() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.tls.yml").read_text())
    assert isinstance(document, dict)
    return document


def test_the_overlay_sets_known_settings_naming_files_devcerts_writes(tmp_path: Path) -> None:
    assert devcerts(["--out", str(tmp_path)]) == 0
    written = {path.name for path in tmp_path.iterdir()}
    assert {"ca.pem", "auth.pem", "auth.key", "download.pem", "download.key", "client.pem", "client.key"} <= written
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tmp_path.glob("*.key"))
    services = overlay()["services"]
    for service, package in (("auth", "auth_server"), ("download", "download_server"), ("dashboard", "dashboard")):
        environment = services[service]["environment"]
        assert set(environment) <= TLS_NAMES | env_names_read_by(package), service
        for value in environment.values():
            assert value.startswith(MOUNT) and value.removeprefix(MOUNT) in written, value
        assert services[service]["volumes"] == ["./deploy/tls:/run/mediadl-tls:ro"]
    assert (ROOT / "deploy" / "tls" / "README").is_file()
