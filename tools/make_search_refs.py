#!/usr/bin/env python3
"""Brute-force references for ember_search (tests/test_search.c), by numpy:

  tests/data/search/corpus.npy    300 x 24 float32 unit vectors (rows 10 and
                                  200 identical, row 50 equal to query 0: ties)
  tests/data/search/queries.npy   7 x 24 float32 (inside the corpus's ranges)
  tests/data/search/expected.json for k = 5 and k = 400 (more than the corpus):
    exact    the top k by inner product, ties by the lower row
    int8     sentence-transformers' scheme: int8 codes by the corpus's
             per-dimension ranges, candidates by integer products, the best
             k x 2 rescored as float query . int8 values
    ubinary  candidates by matching bits, the best k x 3 rescored as float
             query . bits (0 / 1)

Needs numpy only:  python3 tools/make_search_refs.py
"""
import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "search"
N, D, NQ = 300, 24, 7


def order(scores):
    """Rows by score, best first, ties by the lower row."""
    return np.lexsort((np.arange(len(scores)), -scores))


def exact(corpus, q, k):
    s = corpus @ q
    idx = order(s)[:k]
    return [[int(i), float(s[i])] for i in idx]


def int8_codes(x, ranges):
    starts, steps = ranges[0], (ranges[1] - ranges[0]) / np.float32(255)
    return ((x - starts) / steps - np.float32(128)).astype(np.int8)


def rescored(candidate_scores, stored, q, k, mult):
    cand = order(candidate_scores)[: k * mult]
    s = stored[cand].astype(np.float32) @ q
    best = cand[np.lexsort((cand, -s))][:k]
    return [[int(i), float(stored[i].astype(np.float32) @ q)] for i in best]


def main():
    rng = np.random.default_rng(20261128)
    corpus = rng.standard_normal((N, D)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    corpus[200] = corpus[10]
    ranges = np.vstack((corpus.min(0), corpus.max(0))).astype(np.float32)
    queries = corpus[rng.integers(0, N, NQ)] + np.float32(0.3) * rng.standard_normal((NQ, D)).astype(np.float32)
    queries = np.clip(queries, ranges[0], ranges[1]).astype(np.float32)
    corpus[50] = queries[0]  # an exact match (inside the ranges: a query is clipped into them)
    ranges = np.vstack((corpus.min(0), corpus.max(0))).astype(np.float32)
    c8, q8 = int8_codes(corpus, ranges), int8_codes(queries, ranges)
    cbits = np.unpackbits(np.packbits(corpus > 0, axis=1), axis=1)[:, :D]
    qbits = np.unpackbits(np.packbits(queries > 0, axis=1), axis=1)[:, :D]
    expected = {"k": {}}
    for k in (5, 400):
        expected["k"][str(k)] = {
            "exact": [exact(corpus, q, k) for q in queries],
            "int8": [rescored((c8.astype(np.int32) @ q8[i].astype(np.int32)).astype(np.float32), c8, queries[i], k, 2)
                     for i in range(NQ)],
            "ubinary": [rescored((D - (cbits != qbits[i]).sum(1)).astype(np.float32), cbits, queries[i], k, 3)
                        for i in range(NQ)],
        }
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / "corpus.npy", corpus)
    np.save(OUT / "queries.npy", queries)
    expected["numpy"] = np.__version__
    (OUT / "expected.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
