"""The REST gateway: the only public HTTP surface (FastAPI on uvicorn). It keeps no state: it can
run as many replicas as needed.

Step 1 of the article arrives here as JSON, passes the request pipeline (pipeline.py: request
id, authentication, body rules), reaches a router (routers/), is validated (schemas.py), turned
into a protobuf request (convert.py) and sent with a deadline through the generated stubs
(backends.py); the answer comes back as a message and leaves as JSON (convert.py,
responses.py), a gRPC error as problem+json (errors.py).

    __main__.py      `python -m gateway`: settings, logging, uvicorn
    app.py           create_app: the pipeline, routers, error handlers, the lifespan's channels
    settings.py      GatewaySettings, read once from the environment
    pipeline.py      the middlewares in order, each one's job (middleware/ holds them)
    auth.py          who is calling: API keys, client secrets, rate limits (api_keys.py, ratelimit.py)
    deps.py          the routes' FastAPI dependencies (Annotated aliases) and the resource-id rule
    backends.py      the gRPC channels and Backends.call, the one way the services are called
    schemas.py       the API's JSON: request models, the documents answered, the problems
    convert.py       JSON ↔ protobuf
    responses.py     JSON responses: ETag, Location, Idempotent-Replayed
    errors.py        every error as problem+json; gRPC codes → HTTP statuses in one table
    openapi.py       the security schemes in /openapi.json
    metrics.py       Prometheus metrics
    routers/         one per resource: orders, payments, qr, push, pages, demo, health, docs
    push/            following orders: the hub, SSE, WebSocket, long polling
"""
