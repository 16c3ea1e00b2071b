"""The compose files as each compose implementation reads them: valid for docker-compose 1.29 and
docker compose v2 alike, only the gateway published (the gRPC ports only with the debug
override), a healthcheck and a restart policy on every service, start-up ordered by health, and
the databases on named volumes. Needs no Docker engine, only the compose programs."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from tests.conftest import require_tool
from tests.e2e.compose import COMPOSE_FILE, DEBUG_FILE, POSTGRES_FILE, SERVICES, compose_commands
from tests.harness import ROOT

pytestmark = pytest.mark.docker

IMPLEMENTATIONS = ("docker-compose", "docker compose")
# Variables that the files read, unset so that the defaults show.
_VARIABLES = (
    *("PYTHON_IMAGE", "SHOP_IMAGE", "GATEWAY_BIND", "GATEWAY_PUBLISHED_PORT", "GATEWAY_PUBLIC_URL"),
    *("SHOP_POSTGRES_IMAGE", "ORDERS_DB_PASSWORD", "PAYMENTS_DB_PASSWORD", "POSTGRES_MAX_CONNECTIONS"),
)


def resolved(implementation: str, *files: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
    """`config` of the given files: what the implementation makes of them, or the test fails."""
    command = compose_commands().get(implementation)
    require_tool(command is not None, f"`{implementation}` is not installed")
    assert command is not None
    env = {**{k: v for k, v in os.environ.items() if k not in _VARIABLES}, **(variables or {})}
    argv = [*command, "-p", "shopconfig", *(a for f in files for a in ("-f", f)), "config"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(params=IMPLEMENTATIONS)
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host address, host port, container port) of each published port, from either
    implementation's way of writing them ("127.0.0.1:8000:8000/tcp" or a mapping)."""
    ports = []
    for port in service.get("ports", []):
        if isinstance(port, str):
            host_ip, host_port, target = port.split("/")[0].rsplit(":", 2)
            ports.append((host_ip, int(host_port), int(target)))
        else:
            ports.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
    return ports


def test_only_the_gateway_is_published(implementation: str) -> None:
    services = resolved(implementation, str(COMPOSE_FILE))["services"]

    assert set(services) == {*SERVICES, "certs"}
    assert published(services["gateway"]) == [("127.0.0.1", 8000, 8000)]
    assert published(services["order_service"]) == []
    assert published(services["payment_service"]) == []


def test_the_public_url_follows_the_published_port(implementation: str) -> None:
    """QR codes and confirm links point at the port browsers use: the gateway listens on the
    published port, and its public URL follows its port unless GATEWAY_PUBLIC_URL is given
    (GatewaySettings; tests/unit/common/test_settings.py)."""
    gateway = resolved(implementation, str(COMPOSE_FILE), variables={"GATEWAY_PUBLISHED_PORT": "9123"})["services"][
        "gateway"
    ]
    assert published(gateway) == [("127.0.0.1", 9123, 9123)]
    assert gateway["environment"]["GATEWAY_PORT"] == "9123"
    assert gateway["environment"]["GATEWAY_PUBLIC_URL"] == ""
    assert "os.environ['GATEWAY_PORT']" in gateway["healthcheck"]["test"][-1]

    given = {"GATEWAY_PUBLISHED_PORT": "9123", "GATEWAY_PUBLIC_URL": "http://192.0.2.7:9123"}
    gateway = resolved(implementation, str(COMPOSE_FILE), variables=given)["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_PUBLIC_URL"] == "http://192.0.2.7:9123"


def test_debug_override_publishes_the_grpc_ports_on_loopback(implementation: str) -> None:
    services = resolved(implementation, str(COMPOSE_FILE), str(DEBUG_FILE))["services"]

    assert published(services["order_service"]) == [("127.0.0.1", 50051, 50051)]
    assert published(services["payment_service"]) == [("127.0.0.1", 50052, 50052)]
    assert published(services["gateway"]) == [("127.0.0.1", 8000, 8000)]


def test_every_service_has_a_healthcheck_and_a_restart_policy(implementation: str) -> None:
    services = resolved(implementation, str(COMPOSE_FILE))["services"]

    for name in SERVICES:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["build"]["args"] == {"PYTHON_IMAGE": "python:3.12-slim"}, name


def test_start_up_is_ordered_by_health(implementation: str) -> None:
    services = resolved(implementation, str(COMPOSE_FILE))["services"]

    # v2 adds keys of its own (required, restart) to each entry.
    assert services["gateway"]["depends_on"]["order_service"]["condition"] == "service_healthy"
    assert services["gateway"]["depends_on"]["payment_service"]["condition"] == "service_healthy"
    assert services["order_service"]["depends_on"]["payment_service"]["condition"] == "service_healthy"


def test_databases_live_on_named_volumes(implementation: str) -> None:
    config = resolved(implementation, str(COMPOSE_FILE))

    assert {"order-data", "payment-data"} <= set(config["volumes"])
    for service, volume in (("order_service", "order-data"), ("payment_service", "payment-data")):
        mounts = config["services"][service]["volumes"]
        assert any(_source_and_target(m) == (volume, "/data") for m in mounts), mounts


def _source_and_target(mount: str | dict[str, Any]) -> tuple[str, str]:
    if isinstance(mount, str):
        source, target = mount.split(":")[:2]
        return source, target
    return str(mount["source"]), str(mount["target"])


# docker-compose.postgres.yml: several replicas on PostgreSQL.


def _postgres_services(implementation: str) -> dict[str, Any]:
    services: dict[str, Any] = resolved(implementation, str(COMPOSE_FILE), str(POSTGRES_FILE))["services"]
    return services


def test_postgres_override_adds_the_database_and_a_one_shot_migration(implementation: str) -> None:
    services = _postgres_services(implementation)

    assert set(services) == {*SERVICES, "certs", "postgres", "migrate", "redis"}
    postgres, migrate = services["postgres"], services["migrate"]
    assert postgres["build"]["context"].endswith("/deploy/postgres")
    assert postgres["build"]["args"] == {"PYTHON_IMAGE": "python:3.12-slim-bookworm"}
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert postgres["command"] == ["-c", "max_connections=300"]
    assert any(_source_and_target(m) == ("postgres-data", "/var/lib/postgresql/data") for m in postgres["volumes"])
    assert published(postgres) == []
    assert migrate["image"] == services["order_service"]["image"]
    assert migrate["command"][-1] == "python -m order_service migrate && exec python -m payment_service migrate"
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_postgres_override_has_the_gateways_count_their_rate_limits_in_one_redis(implementation: str) -> None:
    services = _postgres_services(implementation)
    redis, gateway = services["redis"], services["gateway"]

    assert redis["build"]["context"].endswith("/deploy/redis")
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "-p", "6379", "ping"]
    assert redis["restart"] == "unless-stopped"
    assert published(redis) == []  # for the gateways only
    assert gateway["environment"]["GATEWAY_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    assert gateway["depends_on"]["redis"]["condition"] == "service_healthy"
    assert gateway["depends_on"]["certs"]["condition"] == "service_completed_successfully"  # still there


def test_postgres_override_starts_the_services_after_the_migration(implementation: str) -> None:
    services = _postgres_services(implementation)

    for name in ("order_service", "payment_service"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["order_service"]["depends_on"]["payment_service"]["condition"] == "service_healthy"


def test_postgres_override_points_every_service_at_postgres_and_every_replica(implementation: str) -> None:
    services = _postgres_services(implementation)
    order = services["order_service"]["environment"]
    payment = services["payment_service"]["environment"]
    gateway = services["gateway"]["environment"]

    assert order["ORDER_DATABASE_URL"] == "postgresql://orders:orders-local-only@postgres:5432/orders"
    assert payment["PAYMENT_DATABASE_URL"] == "postgresql://payments:payments-local-only@postgres:5432/payments"
    assert order["PAYMENT_SERVICE_TARGET"] == gateway["PAYMENT_SERVICE_TARGET"] == "dns:///payment_service:50052"
    assert gateway["ORDER_SERVICE_TARGET"] == "dns:///order_service:50051"


def test_postgres_override_leaves_the_grpc_services_scalable(implementation: str) -> None:
    services = _postgres_services(implementation)

    for name in ("order_service", "payment_service"):
        assert "container_name" not in services[name], name
        assert published(services[name]) == [], name


def test_grpc_is_mutual_tls_with_certificates_from_a_one_shot_service(implementation: str) -> None:
    services = resolved(implementation, str(COMPOSE_FILE))["services"]

    certs = services["certs"]
    assert certs["command"][:3] == ["python", "-m", "common.devcerts"]
    assert certs["restart"] == "no"
    identities = {"gateway": "gateway", "order_service": "order-service", "payment_service": "payment-service"}
    for name, identity in identities.items():
        env = services[name]["environment"]
        assert env["GRPC_TLS_CA"] == "/certs/ca.pem", name
        assert env["GRPC_TLS_CERT"] == f"/certs/{identity}.pem", name
        assert env["GRPC_TLS_KEY"] == f"/certs/{identity}-key.pem", name
        assert services[name]["depends_on"]["certs"]["condition"] == "service_completed_successfully", name
        mounts = services[name]["volumes"]
        read_only = [m.endswith(":ro") if isinstance(m, str) else bool(m.get("read_only")) for m in mounts]
        sources = [_source_and_target(m) for m in mounts]
        assert (("grpc-certs", "/certs"), True) in zip(sources, read_only, strict=True), name
    # Only the order service may move money; only the gateway may call the order service.
    assert services["payment_service"]["environment"]["GRPC_TLS_ALLOW"].startswith(
        "Charge,Refund,ConfirmPayment,CancelPayment:order-service;"
    )
    assert services["order_service"]["environment"]["GRPC_TLS_ALLOW"] == "*:gateway"
    # The healthchecks ask the plaintext health-only ports.
    assert services["order_service"]["healthcheck"]["test"][-1] == "127.0.0.1:50061"
    assert services["payment_service"]["healthcheck"]["test"][-1] == "127.0.0.1:50062"
    assert services["gateway"]["environment"]["GATEWAY_API_KEYS"].startswith("acct_local:sk_test_")
