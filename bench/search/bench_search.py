#!/usr/bin/env python3
"""ember search against FAISS's exact IndexFlatIP, in one run, same threads.

    bench/search/run.sh [--rows 1000000] [--queries 1000] [--threads 2]

The corpus is random unit vectors (seeded; embedding a million lines takes
hours on 2 cores, and an exact search's cost does not depend on the values),
384-dim as all-MiniLM-L6-v2's, written as ember embed writes them: a float32
.npy, and a binary one (np.packbits(x > 0) - 128, with its description).
Queries: corpus rows plus noise, so that the top 10 are not all ties.

Timed: `ember search --vectors ... --query-vectors ... -k 10 --threads T`
as a whole process (mapping the corpus included; the page cache warmed
first), and FAISS's index.search alone (its index built beforehand, not
timed). Each measurement alternates with the others, best of --repeat.
Reports queries/s, the ratio, the hits' agreement, and binary search with
rescoring (4 x k candidates, rescored as sentence-transformers does against
the bits, or against the float vectors): its speed-up over float and its
recall@10 against exact search.
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import numpy as np


def write_corpus(d, rows, dim, nq, seed):
    d.mkdir(parents=True, exist_ok=True)
    f = d / "corpus.npy"
    if not f.exists():
        rng = np.random.default_rng(seed)
        out = np.lib.format.open_memmap(f, mode="w+", dtype=np.float32, shape=(rows, dim))
        for i in range(0, rows, 100000):
            x = rng.standard_normal((min(100000, rows - i), dim)).astype(np.float32)
            out[i:i + len(x)] = x / np.linalg.norm(x, axis=1, keepdims=True)
        out.flush()
        del out
    corpus = np.load(f, mmap_mode="r")
    rng = np.random.default_rng(seed + 1)
    q = np.asarray(corpus[rng.integers(0, rows, nq)]) + 0.05 * rng.standard_normal((nq, dim)).astype(np.float32)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    np.save(d / "queries.npy", q)
    b = d / "binary.npy"
    if not b.exists():
        out = np.lib.format.open_memmap(b, mode="w+", dtype=np.int8, shape=(rows, (dim + 7) // 8))
        for i in range(0, rows, 100000):
            out[i:i + 100000] = (np.packbits(corpus[i:i + 100000] > 0, axis=1).astype(np.int16) - 128).astype(np.int8)
        out.flush()
        del out
        (d / "binary.npy.json").write_text(json.dumps({"ember_vectors": 1, "precision": "binary", "dimensions": dim,
                                                        "model": {"name": "", "dim": dim}, "pooling": "default",
                                                        "normalize": True}))
    return corpus, q


def ember_run(ember, vectors, queries, k, threads, rescore=None, rescore_vectors=None):
    cmd = [ember, "search", "--vectors", str(vectors), "--query-vectors", str(queries), "-k", str(k), "--json",
           "--threads", str(threads)]
    if rescore is not None:
        cmd += ["--rescore", str(rescore)]
    if rescore_vectors is not None:
        cmd += ["--rescore-vectors", str(rescore_vectors)]
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    t = time.perf_counter() - t
    ids = np.array([[r["index"] for r in json.loads(l)["results"]] for l in out.splitlines()])
    return t, ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ember", required=True)
    ap.add_argument("--data", default=os.path.expanduser("~/.cache/ember/bench-search"))
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    import faiss

    faiss.omp_set_num_threads(a.threads)
    d = pathlib.Path(a.data) / f"{a.rows}x{a.dim}"
    corpus, q = write_corpus(d, a.rows, a.dim, a.queries, 7)
    index = faiss.IndexFlatIP(a.dim)
    index.add(np.ascontiguousarray(corpus))
    bindex = faiss.IndexBinaryFlat(a.dim)
    bindex.add(np.load(d / "binary.npy", mmap_mode="r").view(np.uint8) ^ np.uint8(0x80))
    qbits = np.packbits(q > 0, axis=1)
    ember_run(a.ember, d / "corpus.npy", d / "queries.npy", a.k, a.threads)  # the page cache
    times = {"ember": [], "faiss": [], "ember_binary": [], "ember_binary_float_rescore": [], "faiss_binary": []}
    for _ in range(a.repeat):
        t, ids = ember_run(a.ember, d / "corpus.npy", d / "queries.npy", a.k, a.threads)
        times["ember"].append(t)
        t = time.perf_counter()
        _, fids = index.search(q, a.k)
        times["faiss"].append(time.perf_counter() - t)
        t, bids = ember_run(a.ember, d / "binary.npy", d / "queries.npy", a.k, a.threads, rescore=4)
        times["ember_binary"].append(t)
        t, fbids = ember_run(a.ember, d / "binary.npy", d / "queries.npy", a.k, a.threads, rescore=4,
                             rescore_vectors=d / "corpus.npy")
        times["ember_binary_float_rescore"].append(t)
        t = time.perf_counter()
        bindex.search(qbits, a.k * 4)
        times["faiss_binary"].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    qps = {k: a.queries / v for k, v in best.items()}
    same = float(np.mean([len(set(x) & set(y)) / a.k for x, y in zip(ids, fids)]))
    recall = float(np.mean([len(set(x) & set(y)) / a.k for x, y in zip(bids, fids)]))
    recall_f = float(np.mean([len(set(x) & set(y)) / a.k for x, y in zip(fbids, fids)]))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    res = {"machine": f"{cpu}, {os.cpu_count()} cores, {platform.node()}", "rows": a.rows, "dim": a.dim,
           "queries": a.queries, "k": a.k, "threads": a.threads, "faiss": faiss.__version__,
           "best_s": best, "queries_per_s": qps, "ember_over_faiss": qps["ember"] / qps["faiss"],
           "hits_agree_with_faiss": same, "binary_rescore4_recall_at_10": recall,
           "binary_rescore4_float_vectors_recall_at_10": recall_f,
           "binary_speedup_over_float": best["ember"] / best["ember_binary"],
           "loadavg": os.getloadavg()}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
