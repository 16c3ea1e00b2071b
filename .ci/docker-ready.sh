#!/usr/bin/env bash
# Make a Docker engine and docker-compose usable on this offline build machine, and
#
# A copy of shared/tools/docker-ready.sh, kept here so that CI needs nothing outside the
# repository (.ci/run calls it). Keep the two alike.
# provide a local Python base image, since no image registry can be reached here.
#
#   .ci/docker-ready.sh                      # idempotent; prints the base image name last
#
# What it does, each step only when still needed:
#   1. installs Debian's docker.io, docker-compose (v1.29, the `docker-compose` command) and debootstrap
#   2. starts dockerd in the background (log: /tmp/dockerd.log)
#   3. builds the image local/python:3.11-bookworm from a Debian bookworm rootfs with python3 + venv,
#      carrying this machine's CA bundle so that pip inside `docker build` reaches the package index
# Use the image through a build argument, e.g. a Dockerfile that starts with
#   ARG PYTHON_IMAGE=python:3.12-slim
#   FROM ${PYTHON_IMAGE}
# and `PYTHON_IMAGE=local/python:3.11-bookworm docker-compose build` with the compose file passing
# `args: {PYTHON_IMAGE: ${PYTHON_IMAGE:-python:3.12-slim}}`. In that image the interpreter is
# `python3` (no `python`), and pip must install into a venv (PEP 668).
set -euo pipefail
IMAGE=${LOCAL_PYTHON_IMAGE:-local/python:3.11-bookworm}
DOCKER=/usr/bin/docker   # Debian's client, matching its engine (another client may stand first on PATH)

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! $DOCKER info >/dev/null 2>&1; then
  nohup dockerd >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi

if ! $DOCKER image inspect "$IMAGE" >/dev/null 2>&1; then
  root=$(mktemp -d /tmp/rootfs.XXXXXX)
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,curl \
    bookworm "$root" ${mirror:+"$mirror"} >/tmp/debootstrap.log 2>&1 \
    || { echo "debootstrap failed; see /tmp/debootstrap.log" >&2; exit 1; }
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  tar -C "$root" -c . | $DOCKER import -c 'ENV LANG=C.UTF-8' - "$IMAGE" >/dev/null
  rm -rf "$root"
fi
echo "$IMAGE"
