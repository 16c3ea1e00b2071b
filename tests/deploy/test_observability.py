"""deploy/prometheus/, deploy/grafana/ and docker-compose.observability.yml, checked offline (no
Prometheus or Grafana can run here): they parse, Prometheus scrapes each compose service on the
port the service serves its metrics on, and every query of the dashboard names metrics that the
code defines — a renamed metric fails here, not silently on a blank panel."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import REGISTRY

# Every module that defines metrics, so that the registry holds them all.
import common.observed_db
import common.service_metrics  # noqa: F401
import gateway.metrics
import gateway.push.hub  # noqa: F401
import order_service.metrics  # noqa: F401
from gateway.settings import GatewaySettings
from order_service.settings import OrderSettings
from payment_service.settings import PaymentSettings
from tests.conftest import require_tool
from tests.e2e.compose import compose_commands
from tests.harness import ROOT

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "shop.json"
# PromQL words and label names that look like metric names.
_NOT_METRICS = {"grpc_method", "grpc_service", "grpc_code"}
_METRIC = re.compile(r"\b((?:http|grpc|db|order|push|process)_[a-z0-9_]+)\b")


def load_yaml(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def defined_metrics() -> set[str]:
    """The sample names the code's metrics expose (a family with no sample yet counts too)."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def metric_names(expr: str) -> set[str]:
    without_labels = re.sub(r"\{[^}]*\}", "", re.sub(r"\bby\s*\([^)]*\)", "", expr))
    return set(_METRIC.findall(without_labels)) - _NOT_METRICS


def test_the_dashboard_queries_only_metrics_the_code_defines() -> None:
    defined = defined_metrics()
    queried: set[str] = set()
    for panel in panels():
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            assert names <= defined, (panel["title"], names - defined)
            queried |= names
    # The figures the contract names each have a panel.
    for wanted in (
        "grpc_server_handled_total",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_calls_in_flight",
        "grpc_server_streams_open",
        "db_transaction_duration_seconds_bucket",
        "order_reconciler_backlog",
        "order_reconciler_checks_total",
        "http_requests_total",
    ):
        assert wanted in queried, wanted


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"]
    for panel in panels():
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]


@pytest.mark.parametrize(
    ("job", "port"),
    [
        ("gateway", GatewaySettings.model_fields["gateway_port"].default),
        ("order_service", OrderSettings.model_fields["metrics_port"].default),
        ("payment_service", PaymentSettings.model_fields["metrics_port"].default),
    ],
)
def test_prometheus_scrapes_every_service_on_its_metrics_port(job: str, port: int) -> None:
    config = load_yaml("deploy/prometheus/prometheus.yml")
    compose_services = set(load_yaml("docker-compose.yml")["services"])
    scrape = next(s for s in config["scrape_configs"] if s["job_name"] == job)
    assert scrape["metrics_path"] == "/metrics"
    (found,) = scrape["dns_sd_configs"]
    # By the compose service's name: every replica's address (docker-compose.postgres.yml --scale).
    assert found["names"] == [job]
    assert job in compose_services
    assert (found["type"], found["port"]) == ("A", port)


def test_the_compose_override_mounts_what_it_names() -> None:
    services = load_yaml("docker-compose.observability.yml")["services"]
    datasource = load_yaml("deploy/grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    provider = load_yaml("deploy/grafana/provisioning/dashboards/shop.yml")["providers"][0]
    mounts = {
        volume.split(":")[1]: ROOT / volume.split(":")[0]
        for service in services.values()
        for volume in service.get("volumes", [])
    }
    assert mounts["/etc/prometheus/prometheus.yml"].is_file()
    assert (mounts[provider["options"]["path"]] / DASHBOARD.name).is_file()
    assert (mounts["/etc/grafana/provisioning"] / "datasources" / "prometheus.yml").is_file()
    assert datasource["url"] == "http://prometheus:9090"
    for service in services.values():
        assert service["healthcheck"]["test"], service
        assert service["restart"] == "unless-stopped"
        assert all(port.startswith("127.0.0.1:") for port in service["ports"])  # loopback only


@pytest.mark.docker
@pytest.mark.parametrize("implementation", ["docker-compose", "docker compose"])
@pytest.mark.parametrize("extra", [(), ("docker-compose.postgres.yml",)])
def test_compose_reads_the_override(implementation: str, extra: tuple[str, ...]) -> None:
    """Valid for docker-compose 1.29 and docker compose v2, over the SQLite and the PostgreSQL set-ups."""
    command = compose_commands().get(implementation)
    require_tool(command is not None, f"`{implementation}` is not installed")
    assert command is not None
    files = ("docker-compose.yml", *extra, "docker-compose.observability.yml")
    argv = [*command, "-p", "shopobservability", *(a for f in files for a in ("-f", f)), "config"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"prometheus", "grafana", "gateway", "order_service", "payment_service"} <= set(services)
