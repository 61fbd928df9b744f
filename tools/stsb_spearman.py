#!/usr/bin/env python3
"""STS-B English test: Spearman correlation of cosine similarity with the gold scores,
for ember (the CLI, on the CPU) and for sentence-transformers, same model.

    python tools/stsb_spearman.py [--model weights/all-MiniLM-L6-v2] [--ember build/ember]

Needs sentence-transformers, numpy, scipy (tools/README.md). They should agree to 3 decimals.
"""
import argparse
import csv
import os
import subprocess
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent


def spearman(emb, gold):
    a, b = emb[0::2], emb[1::2]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return spearmanr(cos, gold).correlation


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "weights/all-MiniLM-L6-v2"))
    ap.add_argument("--ember", default=str(ROOT / "build/ember"))
    ap.add_argument("--stsb", default=str(ROOT.parent / "shared/data/stsb/stsb-en-test.csv"))
    args = ap.parse_args()
    rows = list(csv.reader(open(args.stsb, newline="", encoding="utf-8")))
    sents = [s for r in rows for s in (r[0], r[1])]
    gold = [float(r[2]) for r in rows]
    with tempfile.TemporaryDirectory() as d:
        inp, out = Path(d) / "s.txt", Path(d) / "e.npy"
        inp.write_text("".join(s.replace("\n", " ") + "\n" for s in sents), encoding="utf-8")
        subprocess.run([args.ember, "embed", "--model", args.model, "-q", str(inp), "-o", str(out)], check=True)
        ember = np.load(out)
    from sentence_transformers import SentenceTransformer
    st = SentenceTransformer(args.model, device="cpu").encode(sents, batch_size=64, convert_to_numpy=True)
    re, rs = spearman(ember, gold), spearman(st, gold)
    print("STS-B en test, %d pairs, %s" % (len(rows), Path(args.model).name))
    print("  ember                  Spearman %.5f" % re)
    print("  sentence-transformers  Spearman %.5f" % rs)
    print("  agree to 3 decimals:   %s" % ("yes" if round(re, 3) == round(rs, 3) else "NO"))


if __name__ == "__main__":
    main()
