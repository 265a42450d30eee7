#!/usr/bin/env bash
# Start the local PostgreSQL cluster and make the role the database tests use. Idempotent.
# Prints the admin URL for ORCH_TEST_POSTGRES_URL.
set -euo pipefail

cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
if [ -z "$cluster" ]; then
  pg_createcluster 15 main >/dev/null
  cluster="15 main"
fi
# shellcheck disable=SC2086
pg_ctlcluster $cluster start >/dev/null 2>&1 || true
port=$(pg_lsclusters -h | awk 'NR==1 {print $3}')
for _ in $(seq 1 50); do
  su postgres -c "psql -p $port -tAc 'select 1'" >/dev/null 2>&1 && break
  sleep 0.2
done
su postgres -c "psql -p $port -q" >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orchestrator_test') THEN
    CREATE ROLE orchestrator_test LOGIN CREATEDB PASSWORD 'orchestrator_test';
  END IF;
END $$;
SQL
echo "postgresql+psycopg://orchestrator_test:orchestrator_test@127.0.0.1:$port/postgres"
