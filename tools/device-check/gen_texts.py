#!/usr/bin/env python3
"""Benchmark inputs: texts of about N tokens from whole words of a BERT
vocabulary, and the STS-B sentences.

    python3 gen_texts.py VOCAB_TXT STSB_CSV OUT_DIR

Writes OUT_DIR/stsb.txt (every sentence of the STS-B test set, 4 times over)
and OUT_DIR/len{32,128,512}.txt (each word is a vocabulary entry, so most
are one token; [CLS] and [SEP] make up the rest). A fixed seed: the same
files on every run, for ember and sentence-transformers alike.
"""
import csv
import random
import sys
from pathlib import Path

SIZES = {32: 4096, 128: 2048, 512: 512}  # tokens per text: number of texts


def main() -> None:
    vocab, stsb, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    words = [w for w in vocab.read_text(encoding="utf-8").split("\n")
             if w.isalpha() and w.isascii() and w.islower() and len(w) > 1]
    rng = random.Random(7)
    for n, count in SIZES.items():
        lines = [" ".join(rng.choice(words) for _ in range(n - 2)) for _ in range(count)]
        (out / f"len{n}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sentences = []
    with open(stsb, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) >= 2:
                sentences += [row[0].replace("\n", " "), row[1].replace("\n", " ")]
    (out / "stsb.txt").write_text("\n".join(sentences * 4) + "\n", encoding="utf-8")
    print(f"gen_texts: {len(words)} words; {len(sentences)} STS-B sentences; files in {out}")


if __name__ == "__main__":
    main()
