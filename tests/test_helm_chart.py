"""The Helm chart in ``helm/madrasa``, rendered offline with the Helm v4 SDK (``helm-python-sdk``).

For the default values and the production example: ``helm lint`` finds nothing, every manifest validates
against Kubernetes' own schemas (``kubernetes-validate``, strict: unknown fields fail) for the oldest version
the chart supports and the newest the package ships, no container can run as root, the owner role's
credentials reach the migration Job only, the probes name routes the application really serves on the port it
really listens on, and the ConfigMap's settings are accepted by ``core.config``. ``values.schema.json`` (and
the chart's own checks) refuse bad values with a message naming them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from core.app import create_app
from core.cli import build_parser
from core.config import Settings, load_settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "madrasa"
PRODUCTION = CHART / "values-production.yaml"
RELEASE, NAMESPACE = "madrasa", "schools"
#: The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
#: Stand-ins for what the referenced Secrets hold, to feed the rendered environment to ``core.config``.
SECRET_VALUES = {
    "MADRASA_SECRET_KEY": "s" * 48,
    "MADRASA_DATABASE_URL": "postgresql://madrasa_app:pw@db/madrasa",
    "MADRASA_MIGRATION_DATABASE_URL": "postgresql://madrasa_owner:pw@db/madrasa",
    "MADRASA_REPLICA_URLS": "postgresql://madrasa_app:pw@replica-1/madrasa",
    "MADRASA_REDIS_URL": "redis://:pw@redis:6379/0",
    "MADRASA_S3_ACCESS_KEY": "access",
    "MADRASA_S3_SECRET_KEY": "secret",
    "MADRASA_METRICS_TOKEN": "m" * 24,
}


@cache
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION.read_text())


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path → rendered text (``NOTES.txt`` included)."""
    return chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders for ``values``."""
    docs = []
    for path, text in sorted(render(values).items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} rendered"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(kind/name, pod spec)`` of every workload."""
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in ("Deployment", "Job"):
            yield name, doc["spec"]["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield name, doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def secret_refs(spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Environment variable → (Secret, key) of every container of a pod spec."""
    refs = {}
    for container in spec["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs[env["name"]] = (ref["name"], ref["key"])
    return refs


def with_cron(values: dict[str, Any] | None) -> dict[str, Any]:
    return {**(values or {}), "cron": {**(values or {}).get("cron", {}), "enabled": True}}


VARIANTS = {
    "default": lambda: None,
    "production": production_values,
    "default-with-cron": lambda: with_cron(None),
    "without-workers": lambda: {"worker": {"enabled": False}},
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    return VARIANTS[request.param]()


# --------------------------------------------------------------------------- lint and Kubernetes' schemas


@pytest.mark.parametrize("values", [None, "production"])
def test_helm_lint_finds_nothing(values: str | None) -> None:
    report = helm.lint(CHART, production_values() if values else None, strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    # severity 1 is information ("icon is recommended"); 2 and 3 are warnings and errors
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_every_manifest_validates_against_kubernetes_strictly(variant: dict[str, Any] | None) -> None:
    docs = manifests(variant)
    assert len(docs) >= 8
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.caught.path)
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {path}: {exc.caught.message}")


def test_the_validator_bites() -> None:
    service = one(manifests(), "Service", RELEASE)
    bad = {**service, "spec": {**service["spec"], "portz": []}}  # strict: an unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[0], strict=True)
    assert chart().metadata["kubeVersion"] == f">={KUBERNETES_VERSIONS[0]}-0"


# --------------------------------------------------------------------------- the schema refuses bad values


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"web": {"replicas": 0}}, "/web/replicas"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"web": {"autoscaling": {"enabledd": True}}}, "'enabledd' not allowed"),
        ({"config": {"logLevel": "LOUD"}}, "/config/logLevel"),
        ({"config": {"storage": {"backend": "nfs"}}}, "/config/storage/backend"),
        ({"config": {"storage": {"backend": "s3", "s3Endpoint": ""}}}, "/config/storage/s3Endpoint"),
        ({"baseDomain": "*.madrasa.example.ma"}, "/baseDomain"),
        ({"baseDomain": "Madrasa.example.ma:443"}, "/baseDomain"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"image": {"digest": "sha256:abc"}}, "/image/digest"),
        ({"web": {"port": 80}}, "/web/port"),
        ({"web": {"autoscaling": {"targetCPUUtilizationPercentage": 150}}}, "/web/autoscaling"),
        ({"securityContext": {"runAsUser": 0}}, "/securityContext/runAsUser"),
        ({"secrets": {"databaseUrl": {"name": "madrasa-db-app", "key": "url/x"}}}, "/secrets/databaseUrl/key"),
        ({"secrets": {"secretKey": {"value": "written-in-the-values"}}}, "'value' not allowed"),
        ({"secrets": {"replicaUrls": {"name": "Not_A_Name", "key": "urls"}}}, "/secrets/replicaUrls"),
        ({"config": {"extra": {"MADRASA_DATABASE_URL": "postgresql://owner@db/x"}}}, "'MADRASA_DATABASE_URL'"),
        ({"config": {"extra": {"DATABASE_URL": "x"}}}, "invalid propertyName 'DATABASE_URL'"),
        ({"config": {"trustedProxies": ["ingress-nginx"]}}, "/config/trustedProxies/0"),
        ({"ingress": {"customDomains": [{"host": "ecole.example.ma"}]}}, "/ingress/customDomains/0"),
        ({"cron": {"schedule": "daily"}}, "/cron/schedule"),
        ({"web": {"podDisruptionBudget": {"maxUnavailable": 0}}}, "/web/podDisruptionBudget/maxUnavailable"),
    ],
)
def test_the_schema_refuses(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    assert complaint in str(caught.value)
    with pytest.raises(helm.HelmValuesError):
        chart().validate_schema(chart().merge_values(values))
    report = helm.lint(CHART, values)
    assert any(complaint in error for error in report["errors"]), report["errors"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"web": {"autoscaling": {"minReplicas": 8, "maxReplicas": 4}}}, "web.autoscaling.minReplicas (8)"),
        ({"config": {"dbPoolMin": 20, "dbPoolMax": 10}}, "config.dbPoolMin"),
        ({"web": {"metricsPort": 8000}}, "web.metricsPort must differ"),
        (
            {"secrets": {"migrationDatabaseUrl": {"name": "madrasa-db-app", "key": "url"}}},
            "the application role must not be the owner",
        ),
        ({"config": {"storage": {"backend": "fs"}}}, "needs volumes.data.existingClaim"),
    ],
)
def test_the_chart_refuses_values_that_contradict_each_other(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    assert complaint in str(caught.value)


def test_good_values_pass_the_schema() -> None:
    chart().validate_schema(chart().merge_values(production_values()))
    chart().validate_schema(chart().merge_values({"config": {"extra": {"MADRASA_SESSION_TTL": 3600}}}))


# --------------------------------------------------------------------------- pods: non-root, read-only, no escalation


def test_no_container_can_run_as_root(variant: dict[str, Any] | None) -> None:
    specs = list(pod_specs(manifests(variant)))
    assert {name.split("/")[0] for name, _ in specs} >= {"Deployment", "Job"}
    for name, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0 and pod["runAsGroup"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True and sc.get("runAsUser", pod["runAsUser"]) > 0, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert sc.get("privileged") is not True, name
            assert "resources" in container and container["resources"]["requests"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            # the writable places: temporary files (and the prepared fonts) and the data folder
            assert "emptyDir" in volumes[mounts["/tmp"]], name
            assert "/var/lib/madrasa" in mounts, name


def test_the_commands_the_pods_run_exist() -> None:
    docs = manifests(with_cron(production_values()))
    commands = [c["args"] for _, spec in pod_specs(docs) for c in spec["containers"]]
    assert sorted(commands) == [["migrate"], ["purge"], ["serve"], ["worker"]]
    for args in commands:
        assert build_parser(None).parse_args(args).command == args[0]


# --------------------------------------------------------------------------- secrets: the owner role stays in the Job


def test_owner_credentials_reach_only_the_migration_job(variant: dict[str, Any] | None) -> None:
    values = chart().merge_values(variant)
    owner = (values["secrets"]["migrationDatabaseUrl"]["name"], values["secrets"]["migrationDatabaseUrl"]["key"])
    app = (values["secrets"]["databaseUrl"]["name"], values["secrets"]["databaseUrl"]["key"])
    docs = manifests(variant)
    holders = []
    for name, spec in pod_specs(docs):
        refs = secret_refs(spec)
        if owner in refs.values() or "MADRASA_MIGRATION_DATABASE_URL" in refs:
            holders.append(name)
            assert refs["MADRASA_MIGRATION_DATABASE_URL"] == owner
        else:
            assert refs["MADRASA_DATABASE_URL"] == app, name
        assert refs["MADRASA_SECRET_KEY"], name
    assert holders == [f"Job/{RELEASE}-migrate"]
    job = one(docs, "Job", f"{RELEASE}-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    # nothing else names the owner's Secret either (a ConfigMap, an annotation)
    for doc in docs:
        if doc is not job:
            assert "MIGRATION_DATABASE_URL" not in yaml.safe_dump(doc), doc["kind"]
            assert owner[0] not in yaml.safe_dump(doc) or owner[0] == app[0], doc["kind"]


def test_secrets_come_only_by_reference(variant: dict[str, Any] | None) -> None:
    docs = manifests(variant)
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart creates no Secret"
    secret_names = set(SECRET_VALUES)
    config = one(docs, "ConfigMap", RELEASE)["data"]
    assert not secret_names & set(config)
    for name, spec in pod_specs(docs):
        for container in spec["containers"]:
            for env in container.get("env", []):
                if env["name"] in secret_names:
                    assert "valueFrom" in env and "value" not in env, f"{name}: {env['name']} written in clear"


def test_replica_urls_are_passed_when_configured() -> None:
    web = one(manifests(production_values()), "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    assert secret_refs(web)["MADRASA_REPLICA_URLS"] == ("madrasa-db-replicas", "urls")
    default = one(manifests(), "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    assert "MADRASA_REPLICA_URLS" not in secret_refs(default)


# --------------------------------------------------------------------------- settings and probes match the application


def environment(docs: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, str]:
    """The MADRASA_* environment a container of ``spec`` would see, secrets replaced by stand-ins."""
    env: dict[str, str] = {}
    container = spec["containers"][0]
    for source in container.get("envFrom", []):
        env.update(one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item["value"] if "value" in item else SECRET_VALUES[item["name"]]
    return env


def test_core_accepts_the_rendered_settings(variant: dict[str, Any] | None) -> None:
    docs = manifests(variant)
    fields = {"MADRASA_" + name.upper() for name in Settings.__struct_fields__}
    unknown = set(one(docs, "ConfigMap", RELEASE)["data"]) - fields
    assert not unknown, f"settings core does not read: {unknown}"
    for name, spec in pod_specs(docs):
        env = environment(docs, spec)
        assert not set(env) - fields, name
        settings = load_settings(env)  # raises ConfigError on a bad value
        assert settings.dialect == "postgres" and settings.host == "0.0.0.0", name
        if name.endswith("-worker"):
            assert settings.job_backend == "saq"


def test_the_production_example_sets_what_it_says() -> None:
    docs = manifests(production_values())
    web = one(docs, "Deployment", f"{RELEASE}-web")["spec"]["template"]["spec"]
    settings = load_settings(environment(docs, web))
    assert settings.replica_urls == (SECRET_VALUES["MADRASA_REPLICA_URLS"],)
    assert settings.trusted_proxies == ("10.42.0.0/16",)
    assert settings.storage_backend == "s3" and settings.s3_secure
    assert settings.public_url == "https://madrasa.example.ma"
    assert settings.session_ttl == 43200
    assert one(docs, "HorizontalPodAutoscaler", f"{RELEASE}-web")["spec"]["minReplicas"] == 6


@pytest.fixture(scope="module")
def app_routes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Path → HTTP methods of every route the application serves (core and the built-in plugins)."""
    app = create_app(make_settings("sqlite", tmp_path_factory.mktemp("routes"), None), wrap=False)
    routes: dict[str, set[str]] = {}
    for route in app.routes:
        routes.setdefault(route.path, set()).update(getattr(route, "methods", set()))
    return routes


def test_the_probes_name_real_routes_on_the_real_port(
    variant: dict[str, Any] | None, app_routes: dict[str, set[str]]
) -> None:
    docs = manifests(variant)
    deployment = one(docs, "Deployment", f"{RELEASE}-web")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    settings = load_settings(environment(docs, spec))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == settings.port
    probes = {kind: container[kind] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind, probe in probes.items():
        path, port = probe["httpGet"]["path"], probe["httpGet"]["port"]
        assert "GET" in app_routes.get(path, set()), f"{kind}: the application serves no GET {path}"
        assert ports[port] == settings.port, f"{kind}: port {port} is not the one madrasa serve listens on"
    # the metrics port: the one core opens (MADRASA_METRICS_PORT), published by the Service, not the Ingress
    service = one(docs, "Service", RELEASE)
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["metrics"] == settings.metrics_port != settings.port
    assert service_ports["metrics"]["targetPort"] == "metrics"
    assert service_ports["http"]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_the_route_table_is_the_real_one(app_routes: dict[str, set[str]]) -> None:
    assert "GET" in app_routes["/healthz"] and "GET" in app_routes["/readyz"]
    assert "/api/v1/plugins" in app_routes and "/healthz-not-there" not in app_routes


# --------------------------------------------------------------------------- availability, scaling, networking


@pytest.mark.parametrize("values", [None, "production"])
def test_autoscalers_disruption_budgets_and_spread(values: str | None) -> None:
    docs = manifests(production_values() if values else None)
    for component in ("web", "worker"):
        deployment = one(docs, "Deployment", f"{RELEASE}-{component}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert "replicas" not in deployment["spec"], f"{component}: the autoscaler owns the replica count"
        hpa = one(docs, "HorizontalPodAutoscaler", f"{RELEASE}-{component}")
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
        assert hpa["spec"]["scaleTargetRef"] == target
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        pdb = one(docs, "PodDisruptionBudget", f"{RELEASE}-{component}")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread and all(c["labelSelector"]["matchLabels"].items() <= labels.items() for c in spread)
    web = one(docs, "Deployment", f"{RELEASE}-web")
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_fixed_replicas_without_an_autoscaler() -> None:
    docs = manifests({"web": {"replicas": 3, "autoscaling": {"enabled": False}}, "worker": {"enabled": False}})
    assert one(docs, "Deployment", f"{RELEASE}-web")["spec"]["replicas"] == 3
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"] == []
    assert not [d for d in docs if d["metadata"]["name"] == f"{RELEASE}-worker"]
    config = one(docs, "ConfigMap", RELEASE)["data"]
    assert config["MADRASA_JOB_BACKEND"] == "inprocess"


def test_the_ingress_serves_the_wildcard_and_custom_domains_over_tls() -> None:
    docs = manifests(production_values())
    ingress = one(docs, "Ingress", RELEASE)
    hosts = [rule["host"] for rule in ingress["spec"]["rules"]]
    assert hosts == [
        "madrasa.example.ma",
        "*.madrasa.example.ma",
        "lycee-ibn-sina.example.ma",
        "aref-casablanca.example.ma",
    ]
    covered = {host: tls["secretName"] for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    assert set(hosts) <= set(covered)
    assert covered["*.madrasa.example.ma"] == "madrasa-wildcard-tls"
    assert covered["lycee-ibn-sina.example.ma"] == "lycee-ibn-sina-tls"
    service = one(docs, "Service", RELEASE)
    for rule in ingress["spec"]["rules"]:
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    config = one(docs, "ConfigMap", RELEASE)["data"]
    assert config["MADRASA_BASE_DOMAIN"] == "madrasa.example.ma"


def test_the_daily_cronjob_is_an_optional_backstop() -> None:
    assert not [d for d in manifests() if d["kind"] == "CronJob"]
    cron = one(manifests(with_cron(None)), "CronJob", f"{RELEASE}-daily")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Africa/Casablanca"
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["purge"]


def test_notes_warn_about_what_is_missing() -> None:
    notes = render()[f"{RELEASE}/templates/NOTES.txt"]
    assert "config.trustedProxies is empty" in notes
    assert "volumes.data.existingClaim is empty" in notes
    production = render(production_values())[f"{RELEASE}/templates/NOTES.txt"]
    assert "WARNING" not in production
    assert "https://lycee-ibn-sina.example.ma/" in production
