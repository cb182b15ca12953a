"""The container image and Kubernetes deployment files (Dockerfile, deploy/kubernetes/) agree with each other.

Nothing here can run a cluster or build the image, so the files are checked statically:

* every resource listed in deploy/kubernetes/kustomization.yaml validates, in strict mode (unknown fields are
  errors), against the schemas of a fixed Kubernetes version shipped with `kubernetes-validate`; a negative check
  proves the validator rejects bad input, so the validation cannot pass vacuously;
* the daemon config embedded in the ConfigMap parses and matches the StatefulSet: the probes hit `health.port`,
  the `prometheus.io/port` annotation is `metrics.prometheus_port`, the state volume is `state_dir`;
* every `password_env` of that config is a key of the Secret, and the Secret reaches the container via `envFrom`;
* the config path the image runs with (Dockerfile CMD, and the container args) is the ConfigMap's mount + key.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"
K8S_VERSION = "1.33"  # a fixed version whose schemas kubernetes-validate ships (it has 1.32 .. 1.37)
CONFIG_KEY = "focusguard.yaml"
# Not part of the default resources: a CRD (Prometheus Operator) kubernetes-validate has no schema for.
OPTIONAL_MANIFESTS = {"servicemonitor.yaml"}

Doc = dict[str, Any]


def kustomization() -> Doc:
    data: Doc = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    return data


def manifest_files() -> list[Path]:
    return [DEPLOY / name for name in kustomization()["resources"]]


def documents() -> list[tuple[str, Doc]]:
    """(file name, document) for every non-empty YAML document of every listed manifest."""
    found: list[tuple[str, Doc]] = []
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((path.name, doc))
    return found


def resource(kind: str, name: str) -> Doc:
    matches = [doc for _, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def statefulset() -> Doc:
    return resource("StatefulSet", "focusguard")


def container() -> Doc:
    containers = statefulset()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Doc = containers[0]
    return result


def daemon_config() -> Doc:
    text = resource("ConfigMap", "focusguard-config")["data"][CONFIG_KEY]
    data: Doc = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


def config_mount_path() -> str:
    """Where the ConfigMap's volume is mounted in the container."""
    volumes = statefulset()["spec"]["template"]["spec"]["volumes"]
    names = [v["name"] for v in volumes if v.get("configMap", {}).get("name") == "focusguard-config"]
    assert len(names) == 1
    mounts = [m for m in container()["volumeMounts"] if m["name"] == names[0]]
    assert len(mounts) == 1 and mounts[0].get("readOnly") is True
    path: str = mounts[0]["mountPath"]
    return path


def port_number(port: int | str) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container()["ports"] if p.get("name") == port]
    assert len(named) == 1, f"no container port named {port!r}"
    return int(named[0])


def password_envs(node: Any) -> Iterator[str]:
    """Every `password_env` value anywhere in the config (mqtt, cameras, refocus ...)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "password_env":
                yield value
            else:
                yield from password_envs(value)
    elif isinstance(node, list):
        for item in node:
            yield from password_envs(item)


def dockerfile_instruction(name: str) -> list[str]:
    """The exec form (JSON list) of the Dockerfile's last `name` instruction."""
    lines = [line for line in DOCKERFILE.read_text(encoding="utf-8").splitlines() if re.match(rf"{name}\s+\[", line)]
    assert lines, f"Dockerfile has no exec-form {name}"
    value: list[str] = json.loads(lines[-1].split(None, 1)[1])
    return value


def config_option(args: list[str]) -> str:
    index = args.index("--config")
    return args[index + 1]


def test_kustomization_lists_existing_files() -> None:
    resources = kustomization()["resources"]
    assert resources and len(resources) == len(set(resources))
    for path in manifest_files():
        assert path.is_file(), f"{path.name} is listed in kustomization.yaml but missing"


def test_every_manifest_is_listed_or_optional() -> None:
    listed = set(kustomization()["resources"])
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert present - listed <= OPTIONAL_MANIFESTS
    assert not listed & OPTIONAL_MANIFESTS, "a CRD-based manifest must stay out of the default resources"


def test_expected_resources_present() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in documents()}
    assert kinds == {
        ("Namespace", "focusguard"),
        ("ConfigMap", "focusguard-config"),
        ("Secret", "focusguard-secrets"),
        ("Service", "focusguard"),
        ("StatefulSet", "focusguard"),
        ("PodDisruptionBudget", "focusguard"),
    }
    for _, doc in documents():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == kustomization()["namespace"] == "focusguard"


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[f"{name}:{doc['kind']}" for name, doc in documents()])
def test_manifest_validates_strictly(name: str, doc: Doc) -> None:
    assert kubernetes_validate.validate(doc, K8S_VERSION, strict=True) == K8S_VERSION


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "replicas"), "three"),
        (("spec", "template", "spec", "containers", 0, "livenessProbe", "periodSecs"), 10),
    ],
    ids=["wrong-type", "unknown-field"],
)
def test_validator_rejects_a_broken_statefulset(path: tuple[str | int, ...], value: Any) -> None:
    broken = copy.deepcopy(statefulset())
    node: Any = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_strict_mode_is_what_catches_unknown_fields() -> None:
    broken = copy.deepcopy(statefulset())
    broken["spec"]["replicaCount"] = 3  # a Helm-ism, not a StatefulSet field
    kubernetes_validate.validate(broken, K8S_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError, match="replicaCount"):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_probes_use_the_health_port() -> None:
    health_port = daemon_config()["health"]["port"]
    probes = {kind: container()[kind] for kind in ("livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in probes.values():
        assert port_number(probe["httpGet"]["port"]) == health_port


def test_prometheus_annotations_match_the_metrics_port() -> None:
    metrics = daemon_config()["metrics"]
    annotations = statefulset()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(metrics["prometheus_port"])
    assert port_number("metrics") == metrics["prometheus_port"]
    service_ports = {p["name"]: p["port"] for p in resource("Service", "focusguard")["spec"]["ports"]}
    assert service_ports == {"metrics": metrics["prometheus_port"], "health": daemon_config()["health"]["port"]}


def test_state_volume_is_the_state_dir() -> None:
    templates = {t["metadata"]["name"]: t for t in statefulset()["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    assert mounts["state"] == daemon_config()["state_dir"]
    assert templates["state"]["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_secret_provides_every_password_env() -> None:
    names = set(password_envs(daemon_config()))
    assert {"FOCUSGUARD_MQTT_PASSWORD", "CAMERA_PASSWORD"} <= names
    secret = resource("Secret", "focusguard-secrets")
    assert names <= set(secret["stringData"])
    refs = [source["secretRef"]["name"] for source in container().get("envFrom", []) if "secretRef" in source]
    assert refs == ["focusguard-secrets"]


def test_image_runs_the_mounted_config() -> None:
    expected = f"{config_mount_path()}/{CONFIG_KEY}"
    assert dockerfile_instruction("ENTRYPOINT") == ["focusguard"]
    assert config_option(dockerfile_instruction("CMD")) == expected
    if "args" in container():
        assert config_option(container()["args"]) == expected


def test_image_user_matches_the_pod_security_context() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^USER 10001(:10001)?$", text, re.MULTILINE)
    assert re.search(rf"^WORKDIR {re.escape(daemon_config()['state_dir'])}$", text, re.MULTILINE)
    pod = statefulset()["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsUser"] == pod["fsGroup"] == 10001 and pod["runAsNonRoot"] is True
    ctx = container()["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["capabilities"]["drop"] == ["ALL"]


def test_the_configmaps_config_is_accepted_by_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped config passes the daemon's own validation (unknown keys, coordination, health, secrets)."""
    from focusguard.settings.config import parse_config

    secret = resource("Secret", "focusguard-secrets")["stringData"]
    for name, value in secret.items():
        monkeypatch.setenv(name, value)
    config = parse_config(daemon_config(), "configmap.yaml")
    assert config.coordination is not None and config.coordination.path.startswith("/focusguard/")
    assert config.health.port == port_number(container()["livenessProbe"]["httpGet"]["port"])
