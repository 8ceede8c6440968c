"""deploy/k8s, who may reach what (issue 14 #4 and #5): NATS runs with the users of
nats/auth.conf (the file `make run` and the tests use) and their passwords from the Secret,
every service connects as its own user, and the NetworkPolicies admit to NATS only the services
and to the chat only the ingress controller and Prometheus. Rendered offline
(tests/deploy/kustomize.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.nats_binary import AUTH_CONFIG, NATS_USERS, password_variable
from tests.deploy.kustomize import render
from tests.deploy.test_manifests import (
    K8S,
    OVERLAYS,
    SERVICES,
    Obj,
    container,
    environment,
    find,
    find_generated,
    workloads,
)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[Obj]]:
    name: str = request.param
    return name, render(K8S / "overlays" / name)


def nats_config(objects: list[Obj]) -> dict[str, str]:
    data: dict[str, str] = find_generated(objects, "ConfigMap", "nats-config")["data"]
    return data


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions with In) against labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", "only In is used here"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def admitted(selector: dict[str, Any], objects: list[Obj]) -> set[str]:
    """The workloads of the overlay whose pods `selector` picks."""
    return {w["metadata"]["name"] for w in workloads(objects) if selects(selector, pod_labels(w))}


def rule_for(policy: Obj, port: int) -> Obj:
    (rule,) = [
        r for r in policy["spec"]["ingress"] if {"port": port, "protocol": "TCP"} in r["ports"]
    ]
    found: Obj = rule
    return found


# --- NATS users ---------------------------------------------------------------------------------


def test_nats_runs_with_the_repositorys_users_and_no_anonymous_access(
    overlay: tuple[str, list[Obj]],
) -> None:
    _, objects = overlay
    data = nats_config(objects)
    assert data["auth.conf"] == AUTH_CONFIG.read_text(), "one auth.conf for k8s, make run, tests"
    assert re.search(r"^include \./auth\.conf$", data["nats.conf"], re.M)
    auth = data["auth.conf"]
    assert re.findall(r"^\s+user: (\w+)$", auth, re.M) == ["chat", "registry", "dispatcher"]
    assert re.findall(r"\{user: (\w+),", auth) == ["admin"]
    assert "no_auth_user" not in auth + data["nats.conf"]
    referenced = set(re.findall(r"\$(NATS_\w+_PASSWORD)", auth))
    assert referenced == {password_variable(user) for user in NATS_USERS}
    env = environment(objects, container(find(objects, "StatefulSet", "nats")))
    secret = find_generated(objects, "Secret", "volano-secrets")["metadata"]["name"]
    for name in referenced:
        assert env[name] == f"secret:{secret}/{name}"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_connects_as_its_own_user(
    overlay: tuple[str, list[Obj]], service: str
) -> None:
    _, objects = overlay
    env = environment(objects, container(find(objects, "Deployment", service)))
    assert env["NATS_USER"] == service
    secret = find_generated(objects, "Secret", "volano-secrets")["metadata"]["name"]
    assert env["NATS_PASSWORD"] == f"secret:{secret}/{password_variable(service)}"


def test_every_workload_that_speaks_nats_has_a_user(overlay: tuple[str, list[Obj]]) -> None:
    """No pod of the overlay points at NATS without credentials (none runs anonymously)."""
    _, objects = overlay
    for workload in workloads(objects):
        if workload["kind"] == "StatefulSet":
            continue
        env = environment(objects, container(workload))
        if "NATS_URL" in env:
            assert env.get("NATS_USER") == workload["metadata"]["name"]


def test_the_chat_user_may_not_touch_registrations() -> None:
    """The chat's rights name no registration object and update no stream (an update may
    source any other stream of the account into one the chat reads)."""
    auth = AUTH_CONFIG.read_text()
    chat = auth[auth.index("user: chat") : auth.index("user: registry")]
    allowed = re.findall(r'"([^"]+)"', chat)
    assert "volano.events.>" in allowed and "_INBOX.chat.>" in allowed
    for subject in allowed:
        assert "subscriptions" not in subject and "positions" not in subject, subject
        assert "volano_registry" not in subject and "volano_ended" not in subject, subject
        assert ".UPDATE." not in subject and ".DELETE." not in subject, subject
        assert not subject.startswith("volano.attempts"), subject
        assert subject not in ("_INBOX.>", ">", "$JS.API.>", "$KV.>"), subject


# --- network ------------------------------------------------------------------------------------


def test_only_the_services_reach_nats(overlay: tuple[str, list[Obj]]) -> None:
    name, objects = overlay
    policy = find(objects, "NetworkPolicy", "nats")
    nats_pods = pod_labels(find(objects, "StatefulSet", "nats"))
    assert selects(policy["spec"]["podSelector"], nats_pods)
    (peer,) = rule_for(policy, 4222)["from"]
    assert set(peer) == {"podSelector"}, "same namespace only"
    assert admitted(peer["podSelector"], objects) == set(SERVICES)
    assert selects(peer["podSelector"], {"app.kubernetes.io/name": "nats-box"}), "operators"
    if name == "dev":
        demo = pod_labels(find(objects, "Deployment", "callback-demo"))
        assert not selects(peer["podSelector"], demo)
    (routes,) = rule_for(policy, 6222)["from"]
    assert admitted(routes["podSelector"], objects) == {"nats"}


def test_only_the_ingress_and_prometheus_reach_the_chat(overlay: tuple[str, list[Obj]]) -> None:
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "chat")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    chat = find(objects, "Deployment", "chat")
    assert selects(policy["spec"]["podSelector"], pod_labels(chat))
    assert admitted(policy["spec"]["podSelector"], objects) == {"chat"}
    (rule,) = policy["spec"]["ingress"]
    port = container(chat)["ports"][0]["containerPort"]
    assert rule["ports"] == [{"port": port, "protocol": "TCP"}]
    peers = {
        (
            p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            p["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        )
        for p in rule["from"]
    }
    assert peers == {("ingress-nginx", "ingress-nginx"), ("monitoring", "prometheus")}
    for peer in rule["from"]:
        assert set(peer) == {"namespaceSelector", "podSelector"}, "both: one peer, not two"
