# Sourced by the scale checks (pgbouncer_check.sh, replica_check.sh): serve the project with
# gunicorn against $DATABASE_URL and make a user, an organization and a metric to write to.
#   app_start PORT WORKERS     migrate is the caller's; sets BASE_URL, app_pidfile
#   app_login                  sets TOKEN, ORG, VALUES_URL (a superuser, an organization)
#   app_stop                   stops gunicorn by its pid
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

app_start() {
  app_pidfile=$(mktemp)
  BASE_URL=http://127.0.0.1:$1
  API_RATE_USER= API_RATE_KEY= API_RATE_AUTH= LOG_LEVEL=WARNING \
    "$VENV/bin/gunicorn" -w "$2" -b "127.0.0.1:$1" exante.wsgi --daemon --pid "$app_pidfile" \
    --access-logfile /dev/null --error-logfile "${APP_ERROR_LOG:-/dev/null}" </dev/null >/dev/null 2>&1
  for _ in $(seq 60); do curl -sf "$BASE_URL/healthz" >/dev/null && return 0; sleep 1; done
  echo "gunicorn did not start" >&2
  return 1
}

app_stop() {
  [ -s "${app_pidfile:-}" ] && kill "$(cat "$app_pidfile")" 2>/dev/null
  rm -f "${app_pidfile:-}"
  app_pidfile=
}

app_login() {
  local email=scale@example.com password=scale-Pass-12345
  DJANGO_SUPERUSER_EMAIL=$email DJANGO_SUPERUSER_PASSWORD=$password \
    "$VENV/bin/python" manage.py createsuperuser --noinput >/dev/null 2>&1
  TOKEN=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"$password\"}" "$BASE_URL/api/auth/token" \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["access"])')
  ORG=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"Scale Org"}' "$BASE_URL/api/organizations" \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"]["uid"])')
  local code
  code=$(curl -s -o /dev/null -w "%{http_code}" -X POST -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -d '{"uid":"scale","name":"Scale","context_type":"ORGANIZATION","value_type":"currency"}' \
    "$BASE_URL/api/metrics")
  [ "$code" = 201 ] || { echo "creating the metric answered $code" >&2; return 1; }
  VALUES_URL=$BASE_URL/api/metrics/values/ORGANIZATION/$ORG
}
