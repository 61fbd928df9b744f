#!/usr/bin/env bash
# Load bench of `ember serve` on loopback: wrk drives POST /embed (one text
# per request, STS-B sentences in turn) at 1, 16 and 256 concurrent clients
# for a fixed time each, and the same texts go through `ember embed` for the
# throughput the server is held to (256 single-text clients >= 80% of it).
# Prints a Markdown section; --record appends it to bench/RESULTS.md.
#
# usage: bench/server/run.sh [--ember PATH] [--model DIR] [--duration S]
#                            [--texts N] [--clients "1 16 256"] [--route embed|openai]
#                            [--threads N] [--device D] [--csv STSB_CSV] [--record]
# Needs wrk (Debian: apt-get install wrk), curl and python3.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/bench/server"
EMBER="$ROOT/build/ember"
MODEL="$ROOT/weights/all-MiniLM-L6-v2"
CSV="$ROOT/../shared/data/stsb/stsb-en-test.csv"
DURATION=30
NTEXTS=1000
CLIENTS="1 16 256"
ROUTE=embed
THREADS=""
DEVICE=cpu
RECORD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ember) EMBER=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --texts) NTEXTS=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --route) ROUTE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --csv) CSV=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
for tool in wrk curl python3; do
  command -v $tool >/dev/null || { echo "run.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$EMBER" ] || { echo "run.sh: no ember binary at $EMBER (build it, or pass --ember)" >&2; exit 1; }
[ -f "$MODEL/model.safetensors" ] || { echo "run.sh: no model in $MODEL (run weights/fetch.sh)" >&2; exit 1; }
[ -f "$CSV" ] || { echo "run.sh: $CSV is missing" >&2; exit 1; }

tmp=$(mktemp -d)
SPID=""
cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then kill -TERM "$SPID"; wait "$SPID" || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
python3 "$HERE/texts.py" "$CSV" "$NTEXTS" "$tmp/texts.txt" "$tmp/texts.lua"
thread_opt=(--device "$DEVICE")
[ -n "$THREADS" ] && thread_opt+=(--threads "$THREADS")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
gpu=""
if [ "$DEVICE" != cpu ] && command -v nvidia-smi >/dev/null; then
  gpu=", $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the reference: ember embed on the same texts, before and after the
# server's runs (the mean is what the server is compared with, as the other
# work on the machine may change in between)
embed_run() {
  "$EMBER" embed -m "$MODEL" "${thread_opt[@]}" --format npy -o "$tmp/ref.npy" "$tmp/texts.txt" 2>"$tmp/embed.log"
  local line
  line=$(grep -m1 -E 'rows \([0-9]+ tokens\) in [0-9.]+ s, [0-9.]+ rows/s' "$tmp/embed.log") ||
    { echo "run.sh: cannot read ember embed's summary:" >&2; cat "$tmp/embed.log" >&2; exit 1; }
  echo "ember embed: $line" >&2
  # texts/s tokens/s
  echo "$line" | sed -E 's/.*rows \(([0-9]+) tokens\) in ([0-9.]+) s, ([0-9.]+) rows\/s.*/\3 \1 \2/' |
    awk '{ printf "%s %.0f\n", $1, $2 / $3 }'
}
read -r embed_tps1 embed_tok1 < <(embed_run)
[ -n "${embed_tps1:-}" ] || exit 1

# ---- the server ------------------------------------------------------------------
"$EMBER" serve -m "$MODEL" "${thread_opt[@]}" --host 127.0.0.1 --port 0 --max-concurrent-requests 1024 \
  2>"$tmp/serve.log" &
SPID=$!
PORT=""
for _ in $(seq 1 600); do
  PORT=$(sed -nE 's/.*listening on http:\/\/127\.0\.0\.1:([0-9]+).*/\1/p' "$tmp/serve.log")
  [ -n "$PORT" ] && break
  kill -0 "$SPID" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "run.sh: the server did not start" >&2; exit 1; }
URL="http://127.0.0.1:$PORT"
device=$(curl -sf "$URL/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["device"])')
for i in 1 2 3; do curl -sf "$URL/embed" -H 'Content-Type: application/json' -d '{"inputs":"warm up"}' >/dev/null; done

# one value (or the sum over label sets) of a metric
metric() { curl -sf "$URL/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f", s }'; }
wait_idle() {
  for _ in $(seq 1 600); do [ "$(metric ember_requests_in_flight)" = 0 ] && return; sleep 0.1; done
}

rows=""
ok_all=1
tps_256=""
for c in $CLIENTS; do
  wait_idle
  s0=$(metric te_request_success); f0=$(metric te_request_failure); d0=$(metric 'te_request_failure{err="disconnected"}')
  k0=$(metric te_batch_next_tokens_sum); b0=$(metric te_batch_next_size_count)
  t=$(( c < 2 ? 1 : 2 ))
  EMBER_BENCH_TEXTS="$tmp/texts.lua" EMBER_BENCH_ROUTE="$ROUTE" \
    wrk -t "$t" -c "$c" -d "${DURATION}s" --timeout 120s -s "$HERE/load.lua" "$URL" >"$tmp/wrk_$c.txt" 2>&1
  wait_idle
  s1=$(metric te_request_success); f1=$(metric te_request_failure); d1=$(metric 'te_request_failure{err="disconnected"}')
  k1=$(metric te_batch_next_tokens_sum); b1=$(metric te_batch_next_size_count)
  res=$(grep '^RESULT' "$tmp/wrk_$c.txt") || { cat "$tmp/wrk_$c.txt" >&2; exit 1; }
  eval "$(echo "${res#RESULT }" | tr ' ' '\n' | sed 's/^/w_/')"
  secs=$(awk -v d="$w_duration_us" 'BEGIN { printf "%.3f", d / 1e6 }')
  rps=$(awk -v n="$w_requests" -v s="$secs" 'BEGIN { printf "%.1f", n / s }')
  tok_s=$(awk -v k=$((k1 - k0)) -v s="$secs" 'BEGIN { printf "%.0f", k / s }')
  batches=$((b1 - b0))
  served=$((s1 - s0)); failed=$((f1 - f0)); dropped=$((d1 - d0))
  # wrk stops with up to c requests unanswered: the server answered them
  # (success) or saw the client leave (disconnected); anything else is lost.
  unaccounted=$(( served + dropped - w_requests ))
  errors=$(( w_non2xx + w_connect + w_read + w_write + w_timeout + w_badbody ))
  verdict="none failed, none lost"
  if [ "$errors" -ne 0 ] || [ $((failed - dropped)) -ne 0 ] || [ "$unaccounted" -lt 0 ] || [ "$unaccounted" -gt "$c" ]; then
    verdict="**FAILED**: wrk errors $errors (non-2xx $w_non2xx, socket $((w_connect + w_read + w_write + w_timeout)), bad bodies $w_badbody), server failures $((failed - dropped)), unaccounted $unaccounted"
    ok_all=0
  fi
  ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
  rows+="| $c | $w_requests | $rps | $rps | $tok_s | $(ms "$w_p50_us") | $(ms "$w_p99_us") | $batches | $verdict (stopped with $unaccounted in flight: $dropped dropped, $((unaccounted - dropped)) answered) |"$'\n'
  echo "clients $c: $rps req/s, p50 $(ms "$w_p50_us") ms, p99 $(ms "$w_p99_us") ms, $batches batches; $verdict" >&2
  [ "$c" = 256 ] && tps_256=$rps
done
kill -TERM "$SPID"; wait "$SPID" || true; SPID=""
read -r embed_tps2 embed_tok2 < <(embed_run)
[ -n "${embed_tps2:-}" ] || exit 1
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
embed_tps=$(awk -v a="$embed_tps1" -v b="$embed_tps2" 'BEGIN { printf "%.1f", (a + b) / 2 }')

ratio=""
if [ -n "$tps_256" ]; then
  ratio=$(awk -v a="$tps_256" -v b="$embed_tps" 'BEGIN { printf "%.2f", a / b }')
fi
{
  echo
  echo "## ember serve under load ($(date -u +%Y-%m-%d))"
  echo
  echo "\`bench/server/run.sh --duration $DURATION --texts $NTEXTS --route $ROUTE --device $DEVICE${THREADS:+ --threads $THREADS}\`:" \
       "wrk ($(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)) on loopback, one text per request" \
       "($( [ "$ROUTE" = openai ] && echo 'POST /v1/embeddings, base64' || echo 'POST /embed' )), the first $NTEXTS" \
       "STS-B English test sentences in turn; $(basename "$MODEL"), $device; ${DURATION} s per row."
  echo "Machine: $cpu, $(nproc) cores$gpu; load average before $load_before, after $load_after" \
       "(wrk, the server and ember embed share these cores)."
  echo
  echo "| clients | requests | requests/s | texts/s | tokens/s | p50 ms | p99 ms | forward passes | outcome |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf "%s" "$rows"
  echo
  echo "\`ember embed\` on the same $NTEXTS texts: $embed_tps1 texts/s ($embed_tok1 tokens/s) before the" \
       "server's runs, $embed_tps2 texts/s ($embed_tok2 tokens/s) after; mean $embed_tps texts/s."
  if [ -n "$ratio" ]; then
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8 ? "meets" : "**misses**") }')
    echo "256 concurrent single-text clients: $tps_256 texts/s = **$ratio×** ember embed's mean" \
         "($verdict the 0.8× bar$( [ "$DEVICE" = cpu ] || echo ', which the issue sets for the CPU'))."
  fi
} >"$tmp/section.md"
cat "$tmp/section.md"
if [ "$RECORD" = 1 ]; then
  cat "$tmp/section.md" >>"$ROOT/bench/RESULTS.md"
  echo "run.sh: appended to bench/RESULTS.md" >&2
fi
[ "$ok_all" = 1 ]
