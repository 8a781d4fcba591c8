#!/usr/bin/env bash
# Render the nginx config for this host into OUT_DIR (default: deploy/nginx/out).
# Compose does the same substitution with the nginx image's templates/ mechanism.
#   DOCFLOW_UPSTREAM=127.0.0.1:8080 DOCFLOW_LISTEN=8088 deploy/nginx/render.sh /tmp/edge
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/out}"
mkdir -p "$out"

upload_limit="${DOCFLOW_MAX_UPLOAD_BYTES:-52428800}"
export DOCFLOW_UPSTREAM="${DOCFLOW_UPSTREAM:-127.0.0.1:8080}"
export DOCFLOW_LISTEN="${DOCFLOW_LISTEN:-8088}"
export DOCFLOW_UI_ROOT="${DOCFLOW_UI_ROOT:-$(cd "$here/../.." && pwd)/frontend/out}"
# The multipart envelope around the file needs a little room above the app's own limit.
export DOCFLOW_MAX_BODY="${DOCFLOW_MAX_BODY:-$((upload_limit + 1048576))}"
export DOCFLOW_RATE="${DOCFLOW_RATE:-20r/s}"
export DOCFLOW_BURST="${DOCFLOW_BURST:-40}"
export DOCFLOW_STREAMS="${DOCFLOW_STREAMS:-20}"
export DOCFLOW_SNIPPETS="$out"

# shellcheck disable=SC2016  # envsubst wants the literal ${NAME} list
vars='${DOCFLOW_UPSTREAM} ${DOCFLOW_LISTEN} ${DOCFLOW_UI_ROOT} ${DOCFLOW_MAX_BODY} ${DOCFLOW_RATE} ${DOCFLOW_BURST} ${DOCFLOW_STREAMS} ${DOCFLOW_SNIPPETS}'
envsubst "$vars" < "$here/docflow.conf" > "$out/docflow.conf"
cp "$here/security-headers.conf" "$here/proxy.conf" "$out/"

# A minimal main file so a private nginx can run from this directory (nginx -p OUT -c nginx.conf).
cat > "$out/nginx.conf" <<CONF
worker_processes 1;
pid $out/nginx.pid;
error_log $out/error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $out/access.log;
    client_body_temp_path $out/tmp/body;
    proxy_temp_path $out/tmp/proxy;
    fastcgi_temp_path $out/tmp/fastcgi;
    uwsgi_temp_path $out/tmp/uwsgi;
    scgi_temp_path $out/tmp/scgi;
    sendfile on;
    keepalive_timeout 65;
    include $out/docflow.conf;
}
CONF
mkdir -p "$out/tmp"
echo "$out/nginx.conf"
