#!/bin/sh
# PostgreSQL init script of compose.yaml (run once, on an empty data directory): two
# databases, each reachable only by its own role. missionlink_core owns and alone may
# connect to missionlink_core; missionlink_identity likewise to missionlink_identity.
# The passwords are the Compose secrets mounted under /run/secrets.
set -eu

core_password="$(cat /run/secrets/core_db_password)"
identity_password="$(cat /run/secrets/identity_db_password)"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v core_password="$core_password" -v identity_password="$identity_password" <<'SQL'
CREATE ROLE missionlink_core LOGIN PASSWORD :'core_password';
CREATE ROLE missionlink_identity LOGIN PASSWORD :'identity_password';
CREATE DATABASE missionlink_core OWNER missionlink_core;
CREATE DATABASE missionlink_identity OWNER missionlink_identity;
REVOKE ALL ON DATABASE missionlink_core FROM PUBLIC;
REVOKE ALL ON DATABASE missionlink_identity FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE missionlink_core TO missionlink_core;
GRANT CONNECT, TEMPORARY ON DATABASE missionlink_identity TO missionlink_identity;
SQL

# The core schema's search uses pg_trgm; created here so the migration needs no superuser.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname missionlink_core \
  -c 'CREATE EXTENSION IF NOT EXISTS pg_trgm;'
