"""The Kubernetes manifests: rendered, validated offline, and checked for what they promise.

The kustomizations are rendered by ``kubectl kustomize`` (kustomize v5 built into kubectl,
offline). Every built-in resource is validated against the Kubernetes API schemas bundled
in kubernetes-validate (strict: unknown fields are errors). Custom resources of the
operators are checked for the fields their CRDs require. Then the tests follow the
references: selectors to pods, Ingress routes to the gateway's, Secrets and ConfigMaps
to what the pods read, environment names to the settings the services really have.
"""

from __future__ import annotations

import importlib
import inspect
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from typing import Any

import kubernetes_validate
import pytest
import yaml

from devstack.config import DATABASES, ROOT, SERVICES, stack_named
from ticketing_common.settings import _DEV_SECRETS, ServiceSettings

K8S_DIR = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {"base": K8S_DIR / "base", "production": K8S_DIR / "overlays" / "production"}
KUBERNETES_VERSION = "1.32"
BUILT_IN_GROUPS = {"v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io"}
GATEWAY_TEMPLATE = ROOT / "nginx" / "templates" / "gateway.conf.template"

# Fields each operator's CRD requires (and the ones these manifests rely on), by kind.
REQUIRED_FIELDS: dict[tuple[str, str], list[str]] = {
    ("postgresql.cnpg.io/v1", "Cluster"): [
        "spec.instances",
        "spec.storage.size",
        "spec.bootstrap.initdb.database",
        "spec.bootstrap.initdb.owner",
    ],
    ("postgresql.cnpg.io/v1", "Database"): ["spec.cluster.name", "spec.name", "spec.owner"],
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ["spec.replicas"],
    ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster"): [
        "spec.clusterSize",
        "spec.kubernetesConfig.image",
    ],
    ("monitoring.coreos.com/v1", "PodMonitor"): ["spec.selector", "spec.podMetricsEndpoints"],
    ("monitoring.coreos.com/v1", "PrometheusRule"): ["spec.groups"],
    ("external-secrets.io/v1", "ExternalSecret"): ["spec.secretStoreRef.name", "spec.target.name"],
}
# Secrets the operators write, with the keys they hold.
OPERATOR_SECRETS = {
    ("postgresql.cnpg.io/v1", "Cluster"): ("{name}-app", {"username", "password"}),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ("{name}-default-user", {"username", "password"}),
}


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl (with its built-in kustomize) is needed to render deploy/k8s")
    return found


@cache
def render(which: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(KUSTOMIZATIONS[which])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def _name(service: str) -> str:
    return service.replace("_", "-")


def _get(doc: dict[str, Any], dotted: str) -> Any:
    value: Any = doc
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def find(
    docs: tuple[dict[str, Any], ...], kind: str, name: str | None = None
) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]


def one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _pod_specs(docs: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@cache
def settings_variables() -> frozenset[str]:
    names: set[str] = set()
    for service in SERVICES:
        module = importlib.import_module(f"{service}.settings")
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, ServiceSettings):
                names |= {f.alias for f in value.model_fields.values() if f.alias}
    return frozenset(names)


both = pytest.mark.parametrize("which", list(KUSTOMIZATIONS))


# ---------------------------------------------------------------- validity


@both
def test_every_built_in_resource_is_valid_against_the_kubernetes_schema(which: str) -> None:
    problems = []
    for doc in render(which):
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else "v1"
        if group not in BUILT_IN_GROUPS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {error.message}")
    assert not problems, "\n".join(problems)


@both
def test_every_custom_resource_is_known_and_has_its_required_fields(which: str) -> None:
    for doc in render(which):
        group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else "v1"
        if group in BUILT_IN_GROUPS:
            continue
        key = (doc["apiVersion"], doc["kind"])
        assert key in REQUIRED_FIELDS, f"unexpected custom resource {key}"
        name = doc["metadata"].get("name", "")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), f"bad name {name!r}"
        for field in REQUIRED_FIELDS[key]:
            assert _get(doc, field) not in (None, "", [], {}), f"{doc['kind']}/{name}: {field}"


def test_production_puts_everything_in_its_namespace() -> None:
    docs = render("production")
    assert one(docs, "Namespace", "ticketing")
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "ticketing", doc["metadata"]["name"]


# ---------------------------------------------------------------- the services


@both
def test_each_service_has_a_replicated_probed_bounded_deployment(which: str) -> None:
    docs = render(which)
    for service, port in SERVICES.items():
        deployment = one(docs, "Deployment", _name(service))
        assert deployment["spec"]["replicas"] >= (3 if which == "production" else 2)
        pod = deployment["spec"]["template"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        app = next(c for c in pod["spec"]["containers"] if c["name"] == "app")
        assert app["command"] == ["python", "-m", "ticketing_common.serve", service]
        assert app["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert app["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert app["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        for container in _containers(pod["spec"]):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), container["name"]
            assert {"cpu", "memory"} <= set(resources["limits"]), container["name"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["image"].startswith("registry.example.com/ticketing/ticketing:")
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


@both
def test_each_service_has_a_service_a_disruption_budget_and_an_autoscaler(which: str) -> None:
    docs = render(which)
    for service, port in SERVICES.items():
        name = _name(service)
        pod_labels = one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        svc = one(docs, "Service", name)
        assert _selects(svc["spec"]["selector"], pod_labels)
        assert svc["spec"]["ports"] == [
            {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
        ]
        pdb = one(docs, "PodDisruptionBudget", name)
        assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
        assert pdb["spec"].get("maxUnavailable") == 1
        hpa = one(docs, "HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        replicas = one(docs, "Deployment", name)["spec"]["replicas"]
        assert 2 <= hpa["spec"]["minReplicas"] <= replicas < hpa["spec"]["maxReplicas"]


@both
def test_migrations_run_before_the_services(which: str) -> None:
    docs = render(which)
    job = one(docs, "Job", "ticketing-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "ticketing_common.migrations", *SERVICES]
    wave = int(job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    for service in SERVICES:
        deployment = one(docs, "Deployment", _name(service))
        assert int(deployment["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) > wave
        init = deployment["spec"]["template"]["spec"]["initContainers"]
        assert [c["command"] for c in init] == [
            ["python", "-m", "ticketing_common.migrations", service]
        ], "without Argo CD ordering, each pod migrates its own database first"
    for doc in docs:
        if doc["kind"] in {"Cluster", "RabbitmqCluster", "RedisCluster", "Database"}:
            assert int(doc["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < wave


# ---------------------------------------------------------------- configuration


def _secret_keys(docs: tuple[dict[str, Any], ...]) -> dict[str, set[str] | None]:
    """Secrets the pods may read, with their keys (None: keys come from a secret store)."""
    secrets: dict[str, set[str] | None] = {}
    for doc in docs:
        if doc["kind"] == "Secret":
            secrets[doc["metadata"]["name"]] = set(doc.get("stringData", {})) | set(
                doc.get("data", {})
            )
        if doc["kind"] == "ExternalSecret":
            secrets[doc["spec"]["target"]["name"]] = None
        pattern = OPERATOR_SECRETS.get((doc["apiVersion"], doc["kind"]))
        if pattern:
            secrets[pattern[0].format(name=doc["metadata"]["name"])] = set(pattern[1])
    return secrets


@both
def test_every_config_map_and_secret_a_pod_reads_exists(which: str) -> None:
    docs = render(which)
    config_maps = {d["metadata"]["name"]: set(d["data"]) for d in find(docs, "ConfigMap")}
    secrets = _secret_keys(docs)
    for owner, spec in _pod_specs(docs):
        for container in _containers(spec):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps, owner
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, owner
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, f"{owner}: Secret {ref['name']}"
                    keys = secrets[ref["name"]]
                    assert keys is None or ref["key"] in keys, f"{owner}: {ref}"


@both
def test_every_variable_given_to_the_services_is_one_they_read(which: str) -> None:
    docs = render(which)
    known = settings_variables()
    given = set(one(docs, "ConfigMap", "ticketing-config")["data"])
    for secret in find(docs, "Secret"):
        given |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for _, spec in _pod_specs(docs):
        for container in _containers(spec):
            given |= {var["name"] for var in container.get("env", [])}
    assert not given - known, f"no service reads: {sorted(given - known)}"


@both
def test_services_are_pointed_at_the_operators_services(which: str) -> None:
    docs = render(which)
    config = one(docs, "ConfigMap", "ticketing-config")["data"]
    cluster = find(docs, "Cluster")[0]
    assert config["DB_HOST"] == f"{cluster['metadata']['name']}-rw"
    assert config["RABBITMQ_HOST"] == find(docs, "RabbitmqCluster")[0]["metadata"]["name"]
    assert (
        config["REDIS_ADDR"] == f"{find(docs, 'RedisCluster')[0]['metadata']['name']}-leader:6379"
    )
    assert config["REDIS_CLUSTER"] == "true"
    for service, port in SERVICES.items():
        key = service.split("_")[0].upper() + "_SERVICE_URL"
        if service == "notification_service":  # nobody calls it: its messages arrive by AMQP
            assert key not in config
        else:
            assert config[key] == f"http://{_name(service)}:{port}"
    databases = {cluster["spec"]["bootstrap"]["initdb"]["database"]}
    for database in find(docs, "Database"):
        assert database["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
        assert database["spec"]["owner"] == cluster["spec"]["bootstrap"]["initdb"]["owner"]
        databases.add(database["spec"]["name"])
    assert databases == set(DATABASES.values()), "one database per service, named as locally"


def test_the_committed_secret_holds_only_development_defaults() -> None:
    secret = one(render("base"), "Secret", "ticketing-secrets")
    dev_values = set(_DEV_SECRETS.values()) | {"admin@example.com", "Admin-Password-1"}
    for key, value in secret["stringData"].items():
        assert value in dev_values, f"{key} is not a development default: never commit secrets"


def test_production_refuses_development_secrets_and_takes_them_from_the_store() -> None:
    docs = render("production")
    assert not find(docs, "Secret"), "production ships no Secret from the repository"
    assert one(docs, "ExternalSecret", "ticketing-secrets")["spec"]["target"]["name"] == (
        "ticketing-secrets"
    )
    assert one(docs, "ConfigMap", "ticketing-config")["data"]["APP_ENV"] == "production"


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service}.settings")
    [found] = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    ]
    return found


def test_production_names_a_real_payment_provider_and_development_the_simulated_one() -> None:
    production = one(render("production"), "ConfigMap", "ticketing-config")["data"]
    development = one(render("base"), "ConfigMap", "ticketing-config")["data"]

    assert (production["PAYMENT_PROVIDER"], production["STAGING"]) == ("chapa", "false")
    assert (development["PAYMENT_PROVIDER"], development["STAGING"]) == ("simulated", "false")


def test_every_service_starts_on_the_production_config_with_the_stores_secrets() -> None:
    """The ConfigMap of overlays/production plus the keys the secret store must hold (each
    generated, as deploy/k8s/README.md asks) is a configuration every service accepts."""
    config = one(render("production"), "ConfigMap", "ticketing-config")["data"]
    store: dict[str, Any] = {key.upper(): secrets.token_hex(32) for key in _DEV_SECRETS}
    store |= {"ADMIN_PASSWORD": "vivid-Otter-42-lantern", "CHAPA_SECRET_KEY": "CHASECK-x"}
    for service in SERVICES:
        settings = _settings_class(service)(**config, **store)
        assert settings.app_env == "production", service


# ---------------------------------------------------------------- gateway


def _gateway_routes() -> dict[str, str]:
    """``/api/<prefix>`` -> service, as nginx/templates routes them."""
    text = GATEWAY_TEMPLATE.read_text()
    return dict(re.findall(r"location (/api/\w+)\s*\{\s*proxy_pass http://(\w+);", text))


@both
def test_ingress_routes_what_the_gateway_routes(which: str) -> None:
    docs = render(which)
    api = one(docs, "Ingress", "ticketing-api")
    routes = {}
    for rule in api["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["pathType"] == "Prefix"
            routes[path["path"]] = path["backend"]["service"]
    expected = _gateway_routes()
    assert expected, "routes found in the gateway template"
    assert {p: s["name"] for p, s in routes.items()} == {p: _name(s) for p, s in expected.items()}
    assert all(s["port"] == {"name": "http"} for s in routes.values())


@both
def test_ingress_limits_each_client_address_like_the_gateway(which: str) -> None:
    annotations = one(render(which), "Ingress", "ticketing-api")["metadata"]["annotations"]
    gateway = stack_named("dev")
    rps = int(annotations["nginx.ingress.kubernetes.io/limit-rps"])
    burst = rps * int(annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"])
    assert (rps, burst) == (gateway.rate_limit_rps, gateway.rate_limit_burst)
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "10m"


@both
def test_ingress_refuses_internal_paths_to_everyone(which: str) -> None:
    docs = render(which)
    denied = one(docs, "Ingress", "ticketing-internal-denied")
    ranges = denied["metadata"]["annotations"]["nginx.ingress.kubernetes.io/denylist-source-range"]
    assert set(ranges.split(",")) == {"0.0.0.0/0", "::/0"}
    paths = [p["path"] for r in denied["spec"]["rules"] for p in r["http"]["paths"]]
    assert paths == ["/internal"]
    api_hosts = [r.get("host") for r in one(docs, "Ingress", "ticketing-api")["spec"]["rules"]]
    assert [r.get("host") for r in denied["spec"]["rules"]] == api_hosts, "same host as the API"
    for ingress in find(docs, "Ingress"):
        assert ingress["spec"]["ingressClassName"] == "nginx"


@both
def test_network_policy_admits_the_services_pods(which: str) -> None:
    docs = render(which)
    policy = one(docs, "NetworkPolicy", "ticketing-api")
    for service in SERVICES:
        labels = one(docs, "Deployment", _name(service))["spec"]["template"]["metadata"]["labels"]
        assert _selects(policy["spec"]["podSelector"]["matchLabels"], labels)
        peers = policy["spec"]["ingress"][0]["from"]
        assert any(
            _selects(p.get("podSelector", {}).get("matchLabels", {"-": "-"}), labels) for p in peers
        ), "services may call each other"


# ---------------------------------------------------------------- monitoring


@both
def test_prometheus_scrapes_every_service_pod_with_the_compose_job_names(which: str) -> None:
    docs = render(which)
    monitor = one(docs, "PodMonitor", "ticketing")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "5s")
    relabel = next(r for r in endpoint["relabelings"] if r["targetLabel"] == "job")
    for service in SERVICES:
        labels = one(docs, "Deployment", _name(service))["spec"]["template"]["metadata"]["labels"]
        assert _selects(monitor["spec"]["selector"]["matchLabels"], labels)
        job = re.sub(
            f"^{relabel['regex']}$",
            relabel["replacement"].replace("${1}", r"\1"),
            labels["app.kubernetes.io/name"],
        )
        assert job == service


@both
def test_alert_rules_are_the_ones_prometheus_uses(which: str) -> None:
    rule = one(render(which), "PrometheusRule", "ticketing-alerts")
    alerts = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
