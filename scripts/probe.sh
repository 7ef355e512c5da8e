#!/usr/bin/env bash
# Time GET /health and POST /api/face/search once a second from separate curl processes (so the load
# generator's own event loop never skews the numbers): scripts/probe.sh PORT TOKEN IMAGE SECONDS
# Prints "health <status> <seconds>" and "search <status> <seconds>" lines; loopback only.
set -euo pipefail
port=$1 token=$2 image=$3 seconds=${4:-30}
body=$(mktemp)
trap 'rm -f "$body"' EXIT
printf '{"image": "%s", "group": ["default"], "topN": 1}' "$(base64 -w0 "$image")" > "$body"
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  curl -s -o /dev/null -m 10 -w "health %{http_code} %{time_total}\n" "http://127.0.0.1:$port/health" || echo "health 000 10"
  curl -s -o /dev/null -m 10 -w "search %{http_code} %{time_total}\n" -H "Authorization: Bearer $token" \
    -H "Content-Type: application/json" --data-binary "@$body" "http://127.0.0.1:$port/api/face/search" || echo "search 000 10"
  sleep 1
done
