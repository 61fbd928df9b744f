"""ember.search over what `ember embed` wrote, and semantic_search in the library, against
numpy's brute force and against the ember program's own search."""
import json
import subprocess

import numpy as np
import pytest

import ember
from ember import util

from conftest import TINY


def brute_force(q, c, k):
    s = q.astype(np.float64) @ c.T.astype(np.float64)
    return [list(np.argsort(-row, kind="stable")[:k]) for row in s], s


def test_semantic_search_ties_and_dot_score():
    # duplicated rows: equal scores, broken by the lower row as sentence-transformers' sort does
    rng = np.random.default_rng(3)
    c = rng.normal(size=(50, 24)).astype(np.float32)
    c[30] = c[10]
    c[40] = c[10]
    hits = util.semantic_search(c[10], c, top_k=3, score_function=util.dot_score)
    assert [h["corpus_id"] for h in hits[0]] == [10, 30, 40]
    assert hits[0][0]["score"] == hits[0][1]["score"] == hits[0][2]["score"]
    q = rng.normal(size=(4, 24)).astype(np.float32)
    order, s = brute_force(q, c, 7)
    got = util.semantic_search(q, c, top_k=7, score_function=util.dot_score)
    for i in range(4):
        assert [h["corpus_id"] for h in got[i]] == order[i]
        assert all(abs(h["score"] - s[i, h["corpus_id"]]) < 1e-4 for h in got[i])
    assert util.semantic_search(np.zeros((0, 24), np.float32), c) == []


@pytest.fixture(scope="module")
def stored(ember_bin, tmp_path_factory):
    """A corpus embedded by `ember embed` into shards, and the same as one float32 matrix."""
    d = tmp_path_factory.mktemp("search")
    lines = [f"line {i}: {w}" for i, w in enumerate(("apples and pears", "a red car", "the stock market",
                                                   "green apples", "fast cars on a track", "bonds and shares",
                                                   "an apple pie", "a bicycle") * 5)]
    (d / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = subprocess.run([str(ember_bin), "embed", "-q", "--model", str(TINY), str(d / "corpus.txt"),
                        "-o", str(d / "vectors"), "--shard-rows", "7"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(ember_bin), "embed", "-q", "--model", str(TINY), str(d / "corpus.txt"),
                        "-o", str(d / "all.npy")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return d, lines


def test_search_stored_shards(stored, tiny, ember_bin):
    d, lines = stored
    corpus = np.load(d / "all.npy")
    q = tiny.encode(["apples", "cars", "money"])
    got = ember.search(d / "vectors", q, top_k=5)
    order, s = brute_force(q, corpus, 5)
    assert len(got) == 3
    for i in range(3):
        assert [h["corpus_id"] for h in got[i]] == order[i]
        assert all(abs(h["score"] - s[i, h["corpus_id"]]) < 1e-4 for h in got[i])
    # the same as the .npy and as the ember program's search of the shards
    assert [[h["corpus_id"] for h in x] for x in ember.search(d / "all.npy", q, top_k=5)] == order
    r = subprocess.run([str(ember_bin), "search", "--model", str(TINY), "--vectors", str(d / "vectors"),
                        "-q", "apples", "-k", "5", "--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert [h["index"] for h in json.loads(r.stdout.splitlines()[0])["results"]] == order[0]
    # top_k past the corpus: every row once
    everything = ember.search(d / "vectors", q[0], top_k=1000)
    assert sorted(h["corpus_id"] for h in everything[0]) == list(range(len(lines)))


def test_search_errors(stored, tmp_path):
    d, _ = stored
    with pytest.raises(ValueError, match="dim|dimension"):
        ember.search(d / "vectors", np.ones((1, 7), np.float32))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ember.search(tmp_path / "nowhere", np.ones((1, 64), np.float32))
    with pytest.raises(ValueError, match="top_k"):
        ember.search(d / "vectors", np.ones((1, 64), np.float32), top_k=0)
