"""The REST gateway: the only public HTTP surface (FastAPI on uvicorn).

Step 1 of the article arrives here as JSON (routers/), is validated (schemas.py), turned into
a protobuf request and sent with a deadline through the generated stubs (backends.py); the
answer comes back as a message and leaves as JSON (convert.py), a gRPC error as problem+json
(errors.py). It keeps no state: it can run as many replicas as needed.
"""
