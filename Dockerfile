# One image for the three services; the command picks which one runs:
#   python -m payment_service | python -m order_service | python -m gateway (the default)
#
# The base image is a build argument: on a machine that cannot reach an image registry, pass a
# local one (`PYTHON_IMAGE=local/python:3.11-bookworm docker-compose build`). Any Debian-based
# image with `python3` (3.11 or newer) and its venv module will do.
#
# Works with the classic builder (docker-compose 1.29) and with BuildKit alike, so no
# `# syntax=` line (BuildKit would fetch that frontend from a registry), no heredocs and no
# cache mounts.
ARG PYTHON_IMAGE=python:3.12-slim

# --- Runtime dependencies: pyproject's [project] dependencies at the lock's exact versions ---
FROM ${PYTHON_IMAGE} AS deps
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# binutils' strip takes the symbol tables out of the wheels' shared objects: a third of the venv.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml requirements.lock ./
RUN python3 -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > requirements.runtime \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet -c requirements.lock -r requirements.runtime \
 && /opt/venv/bin/pip uninstall --quiet --yes pip setuptools \
 && find /opt/venv -name '*.so*' -type f -exec strip --strip-unneeded {} +

# --- Stubs: generated from protos/ here; grpcio-tools never reaches the final image ---
FROM ${PYTHON_IMAGE} AS stubs
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements.lock ./
RUN python3 -m venv /opt/tools \
 && /opt/tools/bin/pip install --quiet -c requirements.lock grpcio-tools mypy-protobuf
COPY protos/ protos/
COPY scripts/gen_protos.py scripts/
RUN /opt/tools/bin/python scripts/gen_protos.py /out

# --- The application, byte-compiled ---
FROM ${PYTHON_IMAGE} AS app
WORKDIR /app
COPY --from=stubs /out/shop/ shop/
COPY common/ common/
COPY payment_service/ payment_service/
COPY order_service/ order_service/
COPY gateway/ gateway/
RUN find . -name '*.pyi' -delete && python3 -m compileall -q -j 0 .

# --- Final: the venv and the application, read-only for a non-root user; no pip, no compiler ---
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin shop \
 && mkdir /data /certs && chown shop:shop /data /certs
COPY --from=deps /opt/venv /opt/venv
COPY --from=app /app /app
WORKDIR /app
# In a container every service listens on all interfaces, and keeps its SQLite file under
# /data (mount a volume there); /certs is where compose's one-shot `certs` service writes the
# development certificates for mTLS (a new named volume takes the directory's owner, shop). The rest
# of the configuration (docs/operations.md#configuration) comes from the environment that `docker
# run -e` or compose passes.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GATEWAY_HOST=0.0.0.0 \
    ORDER_SERVICE_HOST=0.0.0.0 \
    PAYMENT_SERVICE_HOST=0.0.0.0 \
    ORDER_DATABASE_URL=sqlite:////data/orders.db \
    PAYMENT_DATABASE_URL=sqlite:////data/payments.db
USER shop
EXPOSE 8000 50051 50052
CMD ["python", "-m", "gateway"]
