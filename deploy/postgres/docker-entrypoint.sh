#!/bin/sh
# On the first start (an empty volume): make the cluster, then the services' roles and databases
# (init.sql) on a server that listens on its Unix socket only, so that nothing, the healthcheck
# included, sees it half made. Then run PostgreSQL in the foreground as PID 1, with the server
# options given as arguments (compose's `command:`, e.g. `-c max_connections=300`).
#
# Environment: ORDERS_DB_PASSWORD and PAYMENTS_DB_PASSWORD, read on the first start only.
set -eu
here=/usr/local/share/shop-postgres

if [ -s "$PGDATA/PG_VERSION" ]; then
  if [ "$(cat "$PGDATA/PG_VERSION")" != "$PG_MAJOR" ]; then
    echo "the volume holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster and this image runs $PG_MAJOR;" \
      "remove the volume (docker compose down -v) or dump and restore" >&2
    exit 1
  fi
else
  : "${ORDERS_DB_PASSWORD:?is needed on the first start}" "${PAYMENTS_DB_PASSWORD:?is needed on the first start}"
  # Local connections by the postgres OS user only; over the network, passwords (SCRAM).
  initdb --pgdata="$PGDATA" --username=postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses=''" start
  psql --quiet --no-psqlrc --set=ON_ERROR_STOP=1 --username=postgres --dbname=postgres \
    --set=orders_password="$ORDERS_DB_PASSWORD" --set=payments_password="$PAYMENTS_DB_PASSWORD" \
    --file="$here/init.sql"
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
  echo "created the databases orders and payments"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
