#!/usr/bin/env bash
# Start Debian's PostgreSQL on 127.0.0.1 for the storage tests and print the test database's URL on stdout.
# `make test` (and so CI) runs it; with VOICE_AGENT_TEST_DATABASE_URL already set it only echoes that URL.
set -euo pipefail
if [ -n "${VOICE_AGENT_TEST_DATABASE_URL:-}" ]; then
    echo "$VOICE_AGENT_TEST_DATABASE_URL"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "tests/start_postgres.sh: needs root to install and start PostgreSQL; or set VOICE_AGENT_TEST_DATABASE_URL" >&2
    echo "to a postgresql+psycopg:// URL of an empty database the tests may own" >&2
    exit 1
fi
if ! command -v pg_lsclusters >/dev/null || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
    echo "installing postgresql (Debian package) ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
cluster=$(pg_lsclusters --no-header | head -1)
if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    pg_createcluster "$version" main >&2
    cluster=$(pg_lsclusters --no-header | head -1)
fi
read -r version name port status _ <<<"$cluster"
if [ "$status" != "online" ]; then
    pg_ctlcluster "$version" "$name" start >&2
fi
# A throwaway role and database, owned by the role so that the tests may drop and recreate the schema.
user=voice_agent_test
password=voice_agent_test_only
runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 >&2 <<SQL
SELECT 'CREATE ROLE $user LOGIN PASSWORD ''$password'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user')\gexec
SELECT 'CREATE DATABASE $user OWNER $user'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$user')\gexec
SQL
echo "postgresql+psycopg://$user:$password@127.0.0.1:$port/$user"
