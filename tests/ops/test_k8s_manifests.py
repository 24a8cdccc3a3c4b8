"""deploy/k8s checked without a cluster: each object against the pinned Kubernetes API schema (strict, so
a misspelt field fails), and against the code: settings the servers read, probes, secrets, selectors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import ROOT
from tests.ops.test_deploy_files import env_names_read_by

K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.34.0"
PACKAGES = {"auth": "auth_server", "download": "download_server", "dashboard": "dashboard"}
SECRET_NAMES = {
    "JWT_SECRET_KEY",
    "AUTH_SERVICE_TOKEN",
    "DASHBOARD_SESSION_SECRET",
    "AUTH_DATABASE_URL",
    "DOWNLOAD_DATABASE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


def documents() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        found += [(path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def api_names() -> set[str]:
    """Every setting ../shared/API.md names (the contract the servers are built to)."""
    contract = (ROOT.parent / "shared" / "API.md").read_text()
    names = set(re.findall(r"\b[A-Z][A-Z0-9]+(?:_[A-Z0-9]+)+\b", contract))
    # "AUTH_TLS_CERT_FILE / _KEY_FILE" names two settings.
    return names | {f"{prefix}_KEY_FILE" for prefix in re.findall(r"\b([A-Z_]+)_CERT_FILE ?/ ?_KEY_FILE", contract)}


@pytest.mark.parametrize(
    "path_doc", documents(), ids=lambda pd: f"{pd[0].name}:{pd[1]['kind']}/{pd[1]['metadata']['name']}"
)
def test_every_object_is_valid_for_the_pinned_kubernetes(path_doc: tuple[Path, dict[str, Any]]) -> None:
    _, document = path_doc
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises on any schema error


def test_a_misspelt_field_is_caught() -> None:
    deployment = dict(of_kind("Deployment")["download"])
    deployment["spec"] = {**deployment["spec"], "replicaz": 3}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_containers_set_only_settings_their_code_reads_and_take_secrets_from_secrets() -> None:
    config = of_kind("ConfigMap")["mediadl-config"]["data"]
    for name, deployment in of_kind("Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", PACKAGES[name]]
        known = env_names_read_by(PACKAGES[name]) | api_names() | {"TLS_CA_FILE"}
        for variable in container["env"]:
            assert variable["name"] in known, f"{name} sets {variable['name']}, which nothing reads"
            source = variable.get("valueFrom", {})
            if variable["name"] in SECRET_NAMES:
                assert "secretKeyRef" in source, f"{name}: {variable['name']} must come from a Secret"
            if "configMapKeyRef" in source:
                assert source["configMapKeyRef"]["key"] in config, variable
        assert container["resources"]["requests"], name


def test_probes_run_the_projects_health_check_on_the_container_port_over_tls() -> None:
    services = of_kind("Service")
    for name in ("auth", "download"):
        spec = of_kind("Deployment")[name]["spec"]["template"]["spec"]
        [container] = spec["containers"]
        port = container["ports"][0]["containerPort"]
        for probe in ("readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["python", "-m", "mediadl_common.healthcheck"]
            assert command[3] == f"127.0.0.1:{port}"
            assert command[command.index("--tls-server-name") + 1] == f"{name}.mediadl.svc"
        env = {v["name"] for v in container["env"]}
        assert {f"{name.upper()}_TLS_CERT_FILE", f"{name.upper()}_TLS_CLIENT_CA_FILE", "TLS_CA_FILE"} <= env
        assert any(m["mountPath"] == "/run/mediadl-tls" for m in container["volumeMounts"])
        assert services[name]["spec"]["ports"][0]["port"] == port


def test_budgets_and_services_select_existing_pods() -> None:
    workloads = {**of_kind("Deployment"), **of_kind("StatefulSet")}
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in workloads.items()}
    for kind in ("PodDisruptionBudget", "Service"):
        for name, document in of_kind(kind).items():
            if document["spec"].get("type") == "ExternalName":
                continue
            selector = document["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert any(selector.items() <= pod.items() for pod in labels.values()), f"{kind}/{name} selects nothing"
    assert (
        of_kind("Deployment")["download"]["spec"]["replicas"]
        > of_kind("PodDisruptionBudget")["download"]["spec"]["minAvailable"]
    )
    assert of_kind("Service")["postgres"]["spec"]["type"] == "ExternalName"


def test_the_readme_creates_every_secret_key_the_manifests_use() -> None:
    readme = (K8S / "README.md").read_text()
    used = {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for deployment in of_kind("Deployment").values()
        for variable in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert used == SECRET_NAMES
    for key in used:
        assert f"--from-literal={key}=" in readme


def test_download_replicas_share_only_the_bucket() -> None:
    config = of_kind("ConfigMap")["mediadl-config"]["data"]
    assert config["STORAGE_URL"].startswith("s3://") and config["S3_ENDPOINT_URL"].startswith("http://minio.")
    pod = of_kind("Deployment")["download"]["spec"]["template"]["spec"]
    storage = next(volume for volume in pod["volumes"] if volume["name"] == "storage")
    assert "emptyDir" in storage, "each replica's work area is its own: no shared volume"
    assert not of_kind("PersistentVolumeClaim")
    bucket = config["STORAGE_URL"].removeprefix("s3://").split("/")[0]
    job = of_kind("Job")["minio-bucket"]["spec"]["template"]["spec"]["containers"][0]
    assert f"store/{bucket}" in " ".join(job["args"])
