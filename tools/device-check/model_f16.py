#!/usr/bin/env python3
"""Copy a Hugging Face model directory with its F32 tensors stored as F16.

    python3 tools/device-check/model_f16.py SRC_DIR DST_DIR

Pure standard library (struct's 'e' format rounds to nearest even, as
PyTorch's .half() does), so it runs where numpy and torch are absent. Every
other file of the directory (config, tokenizer, sentence-transformers
modules) is copied as is. The device check carries such a copy of
all-MiniLM-L6-v2 (half the bytes of the F32 original) to the GPU machine,
where ember, PyTorch and sentence-transformers all read the same weights.
"""
import json
import shutil
import struct
import sys
from pathlib import Path


def convert(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + hlen])
    body = memoryview(data)[8 + hlen :]
    out_header, chunks, offset = {}, [], 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
        if name == "__metadata__":
            out_header[name] = info
            continue
        begin, end = info["data_offsets"]
        raw = bytes(body[begin:end])
        dtype = info["dtype"]
        if dtype == "F32":
            n = len(raw) // 4
            raw = struct.pack("<%de" % n, *struct.unpack("<%df" % n, raw))
            dtype = "F16"
        out_header[name] = {"dtype": dtype, "shape": info["shape"], "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    hjson = json.dumps(out_header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)  # the tensor data stays 8-byte aligned
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors", "*.bin", "*.onnx", "*.h5", "onnx", "openvino"))
    convert(src / "model.safetensors", dst / "model.safetensors")
    print(f"model_f16: {src} -> {dst} ({(dst / 'model.safetensors').stat().st_size / 2**20:.1f} MiB of weights)")


if __name__ == "__main__":
    main()
