"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import PlainTextResponse, Response

from gateway.deps import BackendsDep
from gateway.errors import problem
from gateway.responses import JSONResponse

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_S = 1.0


@router.get("/healthz")
async def healthz() -> Response:
    """The gateway process is alive (it asks nobody else)."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "A service is not serving"}})
async def readyz(backends: BackendsDep) -> Response:
    """Both services answer the gRPC health check with SERVING."""
    services = await backends.health(READINESS_TIMEOUT_S)
    if all(status == "SERVING" for status in services.values()):
        return JSONResponse({"status": "ready", "services": services})
    down = ", ".join(f"{name} is {status.lower()}" for name, status in services.items() if status != "SERVING")
    return problem(503, f"not ready: {down}")


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
