#!/usr/bin/env bash
# CPU per request of the server process and of its PostgreSQL backends, myapi next to raw-node,
# on the shared harness's data set: the A/B tool behind "where the time goes" in the README (the
# harness reports req/s and latency, not whose CPU a request spent).
#
# usage: bench/cpu-per-request.sh [--duration S] [--runs N] [--no-build]
#
# Uses the local PostgreSQL server ($BENCH_PG_DSN, default postgresql://postgres@127.0.0.1:5432/postgres):
# creates the database myapi_bench_cpu (dropped first if it exists, and at the end), loads the
# harness's schema and 10,000 movies, runs `myapi migrate`, then per run and target starts the
# server, logs in, and for each endpoint runs wrk -t1 -c32 (2 s warm-up, then S s measured),
# reading utime+stime from /proc for the server and for every backend of the database.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HARNESS="$(cd "$ROOT/../shared/bench" && pwd)"
ADMIN_DSN="${BENCH_PG_DSN:-postgresql://postgres@127.0.0.1:5432/postgres}"
DB=myapi_bench_cpu
DSN="${ADMIN_DSN%/*}/$DB"
DURATION=8
RUNS=2
BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: bench/cpu-per-request.sh [--duration S] [--runs N] [--no-build]" >&2; exit 2 ;;
  esac
done
for tool in wrk psql curl node; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (see bench/README.md)" >&2; exit 2; }
done

WORK="$(mktemp -d /tmp/myapi-cpu-XXXXXX)"
SERVER_PID=""
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
  psql -q "$ADMIN_DSN" -c "drop database if exists $DB with (force)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

[[ $BUILD == 1 ]] && (cd "$ROOT" && npm run build >/dev/null)
if [[ ! -d "$HARNESS/baselines/raw-node/node_modules/pg" ]]; then
  (cd "$HARNESS/baselines/raw-node" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
psql -q "$ADMIN_DSN" -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
psql -q "$DSN" -f "$HARNESS/sql/schema.sql" >/dev/null 2>&1
node "$HARNESS/seed.mjs" --movies 10000 | psql -q "$DSN" >/dev/null
TOKEN_KEY="$(node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))")"
export MYAPI_DATABASE__DSN="$DSN" MYAPI_TOKEN_KEY="$TOKEN_KEY" MYAPI_PASSWORDS__UPGRADE_LEGACY=false
(cd "$ROOT" && node dist/cli.js migrate >/dev/null)
cat "$HARNESS/lib/wrk_common.lua" "$HARNESS/lib/wrk_movie_by_id.lua" >"$WORK/by_id.lua"
cat "$HARNESS/lib/wrk_common.lua" "$HARNESS/lib/wrk_static.lua" >"$WORK/static.lua"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
backend_ticks() {
  local total=0 pid
  for pid in $(pgrep -f "postgres: .* $DB " || true); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }

TICK_US=$((1000000 / $(getconf CLK_TCK)))
printf '%-9s %-12s %9s %7s %16s %15s\n' target endpoint req/s 'p99 ms' 'server us/req' 'postgres us/req'
for run in $(seq "$RUNS"); do
  for target in raw-node myapi; do
    port=$((18300 + run))
    if [[ $target == myapi ]]; then
      dir="$ROOT"; cmd=(node dist/cli.js serve)
    else
      dir="$HARNESS/baselines/raw-node"; cmd=(node server.mjs)
    fi
    (cd "$dir" && PORT=$port MYAPI_PORT=$port exec setsid "${cmd[@]}") >"$WORK/$target-$run.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
    token="$(curl -s -X POST "http://127.0.0.1:$port/token" \
      -d 'username=bench@example.com&password=bench-password' |
      node -e 'let s="";process.stdin.on("data",(d)=>(s+=d)).on("end",()=>console.log(JSON.parse(s).access_token))')"
    server="$(pgrep -s "$SERVER_PID" node | head -1)"
    for endpoint in movie_by_id movies_new; do
      if [[ $endpoint == movie_by_id ]]; then
        script="$WORK/by_id.lua"; url="http://127.0.0.1:$port/movies/"
      else
        script="$WORK/static.lua"; url="http://127.0.0.1:$port/movies/new?year=2020&rating=9"
      fi
      wrk -t1 -c32 -d2s -H "Authorization: Bearer $token" -s "$script" "$url" -- 10000 >/dev/null
      s0=$(cpu_ticks "$server"); p0=$(backend_ticks)
      out="$(wrk -t1 -c32 -d"${DURATION}s" -H "Authorization: Bearer $token" -s "$script" "$url" -- 10000 | grep BENCH_RESULT)"
      s1=$(cpu_ticks "$server"); p1=$(backend_ticks)
      n=$(field requests "$out")
      printf '%-9s %-12s %9.0f %7.2f %16d %15d\n' "$target" "$endpoint" "$(field rps "$out")" \
        "$(field p99_ms "$out")" $(((s1 - s0) * TICK_US / n)) $(((p1 - p0) * TICK_US / n))
    done
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  done
done
