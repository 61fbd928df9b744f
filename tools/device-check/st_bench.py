#!/usr/bin/env python3
"""sentence-transformers fp16 throughput on the same inputs as ember.

    python3 st_bench.py MODEL_DIR TEXTS[,TEXTS...] BATCHES SECONDS

One JSON line per (file, batch size), in ember-devcheck bench's format:
tokens (as the model's tokenizer counts them, [CLS]/[SEP] and truncation
included) and texts per second of model.encode() on the whole file,
repeated for at least SECONDS after a warm-up.

DEVCHECK_DEVICE=cpu: a dry run on the CPU in fp32 (no GPU here).
"""
import json
import os
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    model_dir, files, batches, seconds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), float(sys.argv[4])
    device = os.environ.get("DEVCHECK_DEVICE", "cuda")
    # fp16 on the GPU (.half() whatever dtype the checkpoint loads in); fp32
    # on the CPU, where an F16 checkpoint would otherwise load as fp16 and crawl
    if device == "cuda":
        model = SentenceTransformer(model_dir, device=device)
        model.half()
    else:
        model = SentenceTransformer(model_dir, device=device, model_kwargs={"dtype": torch.float32})
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()
    for path in files:
        texts = open(path, encoding="utf-8").read().split("\n")
        if texts and texts[-1] == "":
            texts.pop()
        tok = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
        tokens = sum(len(t) for t in tok)
        for b in batches:
            bs = int(b)
            model.encode(texts[: 2 * bs], batch_size=bs)  # warm-up
            passes, elapsed = 0, 0.0
            while elapsed < seconds or passes < 2:
                sync()
                t0 = time.perf_counter()
                model.encode(texts, batch_size=bs, convert_to_numpy=True)
                sync()
                elapsed += time.perf_counter() - t0
                passes += 1
            print(json.dumps({"engine": "sentence-transformers", "model": model_dir.rstrip("/").split("/")[-1],
                              "device": name, "dtype": "fp16" if device == "cuda" else "fp32", "input": path,
                              "batch": bs, "threads": 1,
                              "texts": len(texts), "tokens": tokens, "passes": passes, "seconds": round(elapsed, 4),
                              "tokens_per_s": tokens * passes / elapsed,
                              "sentences_per_s": len(texts) * passes / elapsed}), flush=True)


if __name__ == "__main__":
    main()
