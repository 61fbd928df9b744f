"""The contextual vectors of one word across lines, from `ember embed --tokens`.

    ember embed --tokens --model bert-base-uncased face.txt -o face.npy   # and face.jsonl
    python3 examples/token_cosine.py face.npy face

Reads the token vectors (.npy) and their index (.jsonl beside it, or --index),
finds the token in every line that has it, and prints the cosine similarity of
each pair of its occurrences: the same word, different vectors, because each is
the hidden state of the word in its sentence. Needs numpy only.
"""
import argparse
import itertools
import json
from pathlib import Path

import numpy as np

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("vectors", help="the .npy written by ember embed --tokens")
ap.add_argument("token", help="a token as the index spells it (e.g. face, or ##s for a word piece)")
ap.add_argument("--index", help="the index (default: VECTORS with .npy replaced by .jsonl)")
args = ap.parse_args()

vectors = np.load(args.vectors)
index = Path(args.index or str(Path(args.vectors).with_suffix(".jsonl")))
found = []  # (line number, token position, row)
for entry in map(json.loads, index.read_text().splitlines()):
    first, _ = entry["rows"]
    for k, tok in enumerate(entry["tokens"]):
        if tok == args.token:
            found.append((entry["line"], k, first + k))
if len(found) < 2:
    raise SystemExit(f"'{args.token}' occurs {len(found)} time(s) in {index}; two are needed")
for (la, ka, ra), (lb, kb, rb) in itertools.combinations(found, 2):
    a, b = vectors[ra], vectors[rb]
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    print(f"'{args.token}' line {la} token {ka} vs line {lb} token {kb}: "
          f"equal {np.array_equal(a, b)}, cosine {cos:.4f}")
