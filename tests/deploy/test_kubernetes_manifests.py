"""The Kubernetes manifests under deploy/kubernetes/: every document is valid for the Kubernetes versions
we support (strictly: an unknown or misspelt field fails), and what they promise holds for this bot —
two replicas rolled over without a gap, probes on the bot's own endpoints, a grace period longer than the
drain, a disruption budget and a Service selecting the pods, settings the bot knows and accepts, and a
Secret that holds nothing but placeholders.

The schemas ship inside kubernetes-validate, so this needs no network and no cluster."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from aiohttp import web

from bot.bootstrap import _SHUTDOWN_GRACE
from bot.clouds_file import clouds_of, parse_clouds
from bot.config import PLACEHOLDER, Settings, load_settings
from bot.operations import register_operations
from bot.policy_file import parse_policy

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
#: The oldest version whose defaults the manifests rely on (the preStop ``sleep`` action is on by default
#: from 1.30) and the newest that kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30", "1.37")
APP_LABEL = {"app.kubernetes.io/name": "dcs-backup-bot"}
SETTING_NAMES = frozenset(field.upper() for field in Settings.model_fields)

Document = dict[str, Any]


@dataclass(frozen=True)
class Manifest:
    path: Path
    document: Document

    @property
    def kind(self) -> str:
        return str(self.document["kind"])

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}: {self.kind}/{self.document['metadata']['name']}"


def _manifests() -> list[Manifest]:
    found = []
    for path in sorted(MANIFESTS.rglob("*")):
        if path.suffix in (".yaml", ".yml"):
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if document:
                    found.append(Manifest(path, document))
    return found


ALL = _manifests()


def _of_kind(kind: str) -> list[Manifest]:
    return [manifest for manifest in ALL if manifest.kind == kind]


def _only(kind: str) -> Document:
    (manifest,) = _of_kind(kind)
    return manifest.document


DEPLOYMENTS = _of_kind("Deployment")
HTTP, SOCKET_MODE = (
    next(m for m in DEPLOYMENTS if m.path.parent.name == mode) for mode in ("http", "socket-mode")
)


def _container(deployment: Manifest) -> Document:
    (container,) = deployment.document["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _literal_env(deployment: Manifest) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(deployment)["env"] if "value" in e}


def _secret_env(deployment: Manifest) -> dict[str, str]:
    """Each variable filled from the Secret, and the key it is read from."""
    refs = {}
    for entry in _container(deployment)["env"]:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["name"] == _only("Secret")["metadata"]["name"], entry
            refs[entry["name"]] = ref["key"]
    return refs


def _config_files() -> dict[str, str]:
    return dict(_only("ConfigMap")["data"])


def _named_by_clouds_file() -> set[str]:
    """The environment variables the clouds file's ``*_env`` keys name."""
    clouds = tomllib.loads(_config_files()["clouds.toml"])["clouds"]
    return {value for cloud in clouds for key, value in cloud.items() if key.endswith("_env")}


def test_the_manifests_are_all_there() -> None:
    kinds = sorted(manifest.kind for manifest in ALL)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "Secret", "Service"]
    for manifest in ALL:
        assert manifest.document["metadata"]["labels"] == APP_LABEL, manifest


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", ALL, ids=str)
def test_every_document_is_valid_for_kubernetes(manifest: Manifest, version: str) -> None:
    try:
        kubernetes_validate.validate(manifest.document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        pytest.fail(f"{manifest} is not valid for Kubernetes {version} at {where}: {error.message}")


def test_strict_validation_refuses_a_misspelt_field() -> None:
    document = dict(HTTP.document)
    document["spec"] = dict(document["spec"]) | {"replica": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(document, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_two_replicas_are_rolled_over_without_a_gap(deployment: Manifest) -> None:
    spec = deployment.document["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    assert spec["selector"] == {"matchLabels": APP_LABEL}
    assert spec["template"]["metadata"]["labels"] == APP_LABEL


def _operations_paths() -> set[str]:
    app = web.Application()
    register_operations(app)
    return {
        resource.canonical
        for resource in app.router.resources()
        if any(route.method == "GET" for route in resource)
    }


def _operations_port(deployment: Manifest) -> int:
    """Where this Deployment's settings make the bot serve /livez and /readyz."""
    env = _literal_env(deployment)
    port = env.get("BOT_OPS_PORT") or env.get("PORT") or Settings.model_fields["port"].default
    return int(port)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_the_probes_ask_the_bots_own_endpoints_where_it_serves_them(deployment: Manifest) -> None:
    container = _container(deployment)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    probes = {
        kind: (container[kind]["httpGet"]["path"], ports[container[kind]["httpGet"]["port"]])
        for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    ops = _operations_port(deployment)

    assert {"/livez", "/readyz"} <= _operations_paths()
    assert probes == {
        "startupProbe": ("/readyz", ops),
        "readinessProbe": ("/readyz", ops),
        "livenessProbe": ("/livez", ops),
    }


def _pre_stop_pause(deployment: Manifest) -> int:
    lifecycle = _container(deployment).get("lifecycle", {})
    return int(lifecycle["preStop"]["sleep"]["seconds"]) if "preStop" in lifecycle else 0


def _longest_dcs_call(deployment: Manifest) -> float:
    """The longest DCS call timeout these settings give any cloud (what the drain waits for)."""
    default = float(_literal_env(deployment).get("DCS_TIMEOUT", Settings.model_fields["dcs_timeout"].default))
    clouds = parse_clouds(_config_files()["clouds.toml"], default_timeout=default, environ=None)
    return max(cloud.timeout for cloud in clouds)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_the_grace_period_outlasts_the_pause_and_the_drain(deployment: Manifest) -> None:
    grace = deployment.document["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    default_timeout = Settings.model_fields["dcs_timeout"].default

    assert grace > default_timeout + _SHUTDOWN_GRACE
    # With a margin: closing the database and the handlers still answering come after the drain.
    assert grace >= _pre_stop_pause(deployment) + _longest_dcs_call(deployment) + _SHUTDOWN_GRACE + 10


def test_http_mode_pauses_before_sigterm_and_socket_mode_does_not() -> None:
    assert _pre_stop_pause(HTTP) >= 5
    assert _pre_stop_pause(SOCKET_MODE) == 0
    assert "SLACK_SIGNING_SECRET" in _secret_env(HTTP) and "SLACK_APP_TOKEN" not in _secret_env(HTTP)
    assert "SLACK_APP_TOKEN" in _secret_env(SOCKET_MODE)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_replicas_spread_over_nodes(deployment: Manifest) -> None:
    (constraint,) = deployment.document["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["maxSkew"] == 1
    assert constraint["labelSelector"] == {"matchLabels": APP_LABEL}


def test_the_disruption_budget_keeps_one_replica_of_the_deployment() -> None:
    budget = _only("PodDisruptionBudget")["spec"]
    assert budget["minAvailable"] == 1
    for deployment in DEPLOYMENTS:
        assert budget["selector"] == deployment.document["spec"]["selector"]
        assert _selects(budget["selector"]["matchLabels"], deployment)


def _selects(labels: dict[str, str], deployment: Manifest) -> bool:
    pod_labels = deployment.document["spec"]["template"]["metadata"]["labels"]
    return bool(labels) and labels.items() <= pod_labels.items()


def test_the_service_sends_to_the_events_port_of_the_http_replicas() -> None:
    service = _only("Service")["spec"]
    assert _selects(service["selector"], HTTP)
    (port,) = service["ports"]
    target = {p["name"]: p["containerPort"] for p in _container(HTTP)["ports"]}[port["targetPort"]]
    assert target == int(_literal_env(HTTP)["PORT"])
    assert target != _operations_port(HTTP), "the operations endpoints are not for the load balancer"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_every_variable_is_a_setting_of_the_bot_or_named_by_the_clouds_file(deployment: Manifest) -> None:
    names = {entry["name"] for entry in _container(deployment)["env"]}
    assert names <= SETTING_NAMES | _named_by_clouds_file()
    assert set(_secret_env(deployment).values()) <= set(_only("Secret")["stringData"])


def test_the_secret_holds_only_placeholders_for_settings_the_bot_reads() -> None:
    secret = _only("Secret")
    assert "data" not in secret, "base64 values could hide real ones"
    values = secret["stringData"]
    assert set(values) <= SETTING_NAMES | _named_by_clouds_file()
    for key, value in values.items():
        assert PLACEHOLDER in value, f"{key} is no placeholder"
    assert re.fullmatch(r"postgresql://[^:]+:replace-[^@]+@[^/]+/\w+", values["BOT_DATABASE"])


def test_the_policy_and_the_clouds_file_are_valid() -> None:
    files = _config_files()
    clouds = parse_clouds(files["clouds.toml"], default_timeout=30, environ=None)
    policy = parse_policy(files["policy.toml"], "policy.toml", frozenset(cloud.name for cloud in clouds))
    assert policy.rules


def _config_mounts(deployment: Manifest) -> Iterator[str]:
    """Where the ConfigMap's volume is mounted."""
    spec = deployment.document["spec"]["template"]["spec"]
    volumes = {
        volume["name"]
        for volume in spec["volumes"]
        if volume.get("configMap", {}).get("name") == _only("ConfigMap")["metadata"]["name"]
    }
    for mount in _container(deployment)["volumeMounts"]:
        if mount["name"] in volumes:
            assert mount.get("readOnly") is True and "subPath" not in mount  # edits must reach the files
            yield mount["mountPath"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_the_bot_accepts_the_configuration_a_replica_gets(
    deployment: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    (mount,) = _config_mounts(deployment)
    for name, text in _config_files().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    # The files where the pod has them; the Secret's values as the operator fills them in.
    env = {
        name: str(tmp_path / Path(value).relative_to(mount)) if value.startswith(mount + "/") else value
        for name, value in _literal_env(deployment).items()
    }
    secret = _only("Secret")["stringData"]
    env |= {
        name: secret[key].replace(PLACEHOLDER, "filled-in-") for name, key in _secret_env(deployment).items()
    }

    settings = load_settings(
        None, **{name.lower(): value for name, value in env.items() if name in SETTING_NAMES}
    )
    clouds = clouds_of(settings, environ=env, env_file=None)

    assert settings.socket_mode is (deployment is SOCKET_MODE)
    assert settings.bot_lease_ttl == 30
    assert [cloud.name for cloud in clouds] == ["eu-de"]
    assert str(settings.bot_database).startswith("postgresql:")


def _dockerfile_user() -> tuple[int, int]:
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match is not None
    return int(match[1]), int(match[2])


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=str)
def test_the_pod_runs_as_the_images_user_on_a_read_only_root(deployment: Manifest) -> None:
    pod = deployment.document["spec"]["template"]["spec"]["securityContext"]
    container = _container(deployment)["securityContext"]

    assert (pod["runAsUser"], pod["runAsGroup"]) == _dockerfile_user()
    assert pod["runAsNonRoot"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    # Only SQLite writes a file, and these replicas share PostgreSQL.
    assert container["readOnlyRootFilesystem"] is True
    assert _secret_env(deployment)["BOT_DATABASE"] == "BOT_DATABASE"
