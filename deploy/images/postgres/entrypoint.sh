#!/bin/sh
# What the official postgres image's entrypoint does for the variables keyward uses:
# POSTGRES_USER (postgres), POSTGRES_PASSWORD, POSTGRES_DB (= user), POSTGRES_HOST_AUTH_METHOD
# (scram-sha-256 with a password), POSTGRES_INITDB_ARGS, PGDATA. Initialises an empty PGDATA
# once (a private server on the socket only creates POSTGRES_DB), then runs postgres in front.
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac
[ "${1:-}" = postgres ] || exec "$@"

user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]; then
    echo "Error: the database is uninitialized and no superuser password is set." >&2
    echo "Set POSTGRES_PASSWORD, or POSTGRES_HOST_AUTH_METHOD=trust to allow all connections without a password." >&2
    exit 1
  fi
  pwfile=/tmp/pgpass.$$
  printf '%s' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then pw="--pwfile=$pwfile"; else pw=; fi
  # shellcheck disable=SC2086
  initdb --username="$user" $pw --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" start
  if [ "$db" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
