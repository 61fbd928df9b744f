#!/usr/bin/env python3
"""sentence-transformers fp16 throughput on the same inputs as ember.

    python3 st_bench.py MODEL_DIR TEXTS[,TEXTS...] BATCHES SECONDS

One JSON line per (file, batch size), in ember-devcheck bench's format:
tokens (as the model's tokenizer counts them, [CLS]/[SEP] and truncation
included) and texts per second of model.encode() on the whole file,
repeated for at least SECONDS after a warm-up.
"""
import json
import sys
import time

import torch
from sentence_transformers import SentenceTransformer


def main() -> None:
    model_dir, files, batches, seconds = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), float(sys.argv[4])
    model = SentenceTransformer(model_dir, device="cuda")
    model.half()
    name = torch.cuda.get_device_name()
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
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                model.encode(texts, batch_size=bs, convert_to_numpy=True)
                torch.cuda.synchronize()
                elapsed += time.perf_counter() - t0
                passes += 1
            print(json.dumps({"engine": "sentence-transformers", "model": model_dir.rstrip("/").split("/")[-1],
                              "device": name, "dtype": "fp16", "input": path, "batch": bs, "threads": 1,
                              "texts": len(texts), "tokens": tokens, "passes": passes, "seconds": round(elapsed, 4),
                              "tokens_per_s": tokens * passes / elapsed,
                              "sentences_per_s": len(texts) * passes / elapsed}), flush=True)


if __name__ == "__main__":
    main()
