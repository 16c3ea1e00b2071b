"""The gateway's own ASGI middleware, one module each; gateway/pipeline.py puts them in order."""
