#!/usr/bin/env bash
# Install Docflow on an Ubuntu host with Docker Compose. Safe to run again: every step checks
# before it changes anything, and existing secrets in .env are never replaced.
#   sudo deploy/install-ubuntu.sh            # from a checkout of the repository
# Env: BACKUP_DIR (/var/backups/docflow), BACKUP_KEEP (14 archives), BACKUP_HOUR (3).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
backup_dir="${BACKUP_DIR:-/var/backups/docflow}"
backup_keep="${BACKUP_KEEP:-14}"
backup_hour="${BACKUP_HOUR:-3}"
compose=(docker compose -f "$here/deploy/compose.yaml" --env-file "$here/.env")

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root (sudo $0)" >&2
  exit 1
fi

# 1. Docker from Ubuntu's own archive (docker.io + the compose v2 plugin).
if ! command -v docker >/dev/null 2>&1 || ! docker compose version >/dev/null 2>&1; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose-v2 curl
fi
systemctl enable --now docker >/dev/null

# 2. .env with generated secrets, written once.
secret() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c "${1:-40}"; }
if [ ! -f "$here/.env" ]; then
  umask 077
  sed -e "s|^DOCFLOW_SECRET_KEY=.*|DOCFLOW_SECRET_KEY=$(secret 64)|" \
      -e "s|^POSTGRES_PASSWORD=.*|POSTGRES_PASSWORD=$(secret)|" \
      -e "s|^REDIS_PASSWORD=.*|REDIS_PASSWORD=$(secret)|" \
      -e "s|^DOCFLOW_FLOWER_PASSWORD=.*|DOCFLOW_FLOWER_PASSWORD=$(secret 24)|" \
      -e "s|^DOCFLOW_LOG_JSON=.*|DOCFLOW_LOG_JSON=true|" \
      "$here/.env.example" > "$here/.env"
  echo "wrote $here/.env with generated secrets (Flower password: grep FLOWER $here/.env)"
else
  echo "$here/.env exists: keeping its secrets"
fi

# 3. Build and start; --wait returns when every health check passes.
"${compose[@]}" build
"${compose[@]}" up -d --wait
curl -fsS "http://127.0.0.1:$(grep -E '^EDGE_PORT=' "$here/.env" | cut -d= -f2 || echo 8080)/api/v1/health/ready" >/dev/null \
  && echo "Docflow is up and ready"

# 4. Daily backup with retention, as a cron job (replaced, not duplicated, on re-runs).
install -d -m 0750 -o 10001 -g 10001 "$backup_dir"
cat > /etc/cron.d/docflow-backup <<CRON
# Docflow: daily archive (pg_dump -Fc + file store + manifest), newest $backup_keep kept.
SHELL=/bin/bash
0 $backup_hour * * * root ${compose[*]} run --rm -T -v $backup_dir:/backups api backup --out /backups --keep $backup_keep >> /var/log/docflow-backup.log 2>&1
CRON
chmod 0644 /etc/cron.d/docflow-backup
echo "daily backup at ${backup_hour}:00 into $backup_dir (keeps $backup_keep)"
echo "create the first admin: ${compose[*]} exec api docflow users create --role admin"
