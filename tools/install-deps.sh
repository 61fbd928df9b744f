#!/usr/bin/env bash
# Install what ember builds and tests with, from Debian's packages.
# Needs root (or sudo). Idempotent: packages already present are skipped.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config python3 python3-pip
  libutf8proc-dev       # Unicode tables for the tokenizer
  libjansson-dev        # JSON: config files, safetensors headers, JSONL
  libopenblas-openmp-dev # CBLAS for the CPU backend (OpenMP build)
  libcriterion-dev      # tests
  zlib1g-dev            # .gz input
  libmicrohttpd-dev     # ember serve
  libcurl4-openssl-dev  # models by name: downloads from the Hugging Face Hub
  python3-venv          # the Python tests and ember serve's make virtual environments
  python3-dev           # Python.h, for pip install . (the extension)
  wrk                   # ember serve's load bench (bench/server/run.sh)
  clang libclang-rt-14-dev libomp-dev  # the fuzz targets (libFuzzer, sanitizers): tools/fuzz.sh
)
# Spark's test (python/tests/test_spark.py) needs a Java runtime, 17 or newer:
# the one already there, or Debian's
command -v java > /dev/null || pkgs+=(openjdk-17-jre-headless)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
