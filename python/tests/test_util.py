"""ember.util against plain numpy arithmetic and sentence-transformers' result shapes."""
import numpy as np
import pytest

from ember import util


def brute_force(q, c, k):
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    cn = c / np.linalg.norm(c, axis=1, keepdims=True)
    s = (qn.astype(np.float64) @ cn.T.astype(np.float64))
    return [list(np.argsort(-row, kind="stable")[:k]) for row in s], s


def test_cos_sim():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 16)).astype(np.float32), rng.normal(size=(7, 16)).astype(np.float32)
    s = util.cos_sim(a, b)
    assert s.shape == (5, 7) and s.dtype == np.float32
    _, want = brute_force(a, b, 1)
    assert np.abs(s - want).max() < 1e-6
    assert util.cos_sim(a[0], b[0]).shape == (1, 1)  # 1-D inputs are one vector each
    assert util.cos_sim(a[0].tolist(), b).shape == (1, 7)
    assert np.allclose(np.diag(util.cos_sim(a, a)), 1, atol=1e-6)
    assert util.cos_sim(np.zeros(16), a[0])[0, 0] == 0  # a zero vector is similar to nothing
    assert np.abs(util.dot_score(a, b) - a @ b.T).max() < 1e-5


def test_cos_sim_errors():
    with pytest.raises(ValueError, match="16 dimensions, b of 8"):
        util.cos_sim(np.ones((2, 16)), np.ones((2, 8)))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        util.cos_sim(np.ones((2, 2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="numbers"):
        util.cos_sim(["a", "b"], np.ones((1, 2)))


def test_semantic_search_is_the_brute_force_ranking():
    rng = np.random.default_rng(1)
    q, c = rng.normal(size=(9, 32)).astype(np.float32), rng.normal(size=(300, 32)).astype(np.float32)
    hits = util.semantic_search(q, c, top_k=5)
    order, s = brute_force(q, c, 5)
    assert len(hits) == 9
    for i, h in enumerate(hits):
        assert [x["corpus_id"] for x in h] == order[i]
        assert all(isinstance(x["corpus_id"], int) and isinstance(x["score"], float) for x in h)
        assert all(abs(x["score"] - s[i, x["corpus_id"]]) < 1e-5 for x in h)
    # chunking queries and corpus does not change the answer (beyond the products' rounding)
    chunked = util.semantic_search(q, c, top_k=5, query_chunk_size=2, corpus_chunk_size=7)
    assert [[x["corpus_id"] for x in h] for h in chunked] == [[x["corpus_id"] for x in h] for h in hits]
    assert max(abs(x["score"] - y["score"]) for a, b in zip(chunked, hits) for x, y in zip(a, b)) < 1e-6


def test_semantic_search_edges():
    rng = np.random.default_rng(2)
    c = rng.normal(size=(3, 8)).astype(np.float32)
    hits = util.semantic_search(c[1], c, top_k=10)  # one query, top_k past the corpus
    assert len(hits) == 1 and len(hits[0]) == 3 and hits[0][0]["corpus_id"] == 1
    assert util.semantic_search(c, c, top_k=1, score_function=util.dot_score)[0][0]["corpus_id"] == \
        int(np.argmax(c[0] @ c.T))
    with pytest.raises(ValueError, match="top_k"):
        util.semantic_search(c, c, top_k=0)
