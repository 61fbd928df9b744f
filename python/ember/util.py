"""sentence_transformers.util's similarity and search functions, on numpy (no torch).

Inputs may be numpy arrays, lists, or torch tensors (moved to numpy); a 1-D input is
one vector. Results are numpy float32 arrays, and semantic_search returns what
sentence-transformers returns: a list per query of {"corpus_id", "score"}, best first.
semantic_search with cos_sim or dot_score (the two sentence-transformers offers) runs
in ember's library: exact top-k on every core, blocked products, a streaming top-k.
"""
import numpy as np

from . import _ember


def _matrix(x, name):
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{name} must be numbers (a vector or a matrix of embeddings), got dtype {a.dtype}")
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def normalize_embeddings(embeddings):
    """Each row divided by its L2 norm (zero rows stay zero)."""
    a = _matrix(embeddings, "embeddings")
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


def _pair(a, b):
    a, b = _matrix(a, "a"), _matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has vectors of {a.shape[1]} dimensions, b of {b.shape[1]}")
    return a, b


def cos_sim(a, b):
    """Cosine similarity of every row of a with every row of b: shape (len(a), len(b))."""
    a, b = _pair(a, b)
    return normalize_embeddings(a) @ normalize_embeddings(b).T


def dot_score(a, b):
    """Dot product of every row of a with every row of b: shape (len(a), len(b))."""
    a, b = _pair(a, b)
    return a @ b.T


def semantic_search(query_embeddings, corpus_embeddings, query_chunk_size=100, corpus_chunk_size=500000,
                    top_k=10, score_function=cos_sim):
    """The top_k corpus entries of each query by score_function, best first:
    [[{"corpus_id": int, "score": float}, ...] per query]."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    for name, v in (("query_chunk_size", query_chunk_size), ("corpus_chunk_size", corpus_chunk_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    q, c = _pair(query_embeddings, corpus_embeddings)
    if score_function is cos_sim or score_function is dot_score:
        # the library's exact search (its own blocking: the chunk sizes do not apply)
        if score_function is cos_sim:
            q, c = normalize_embeddings(q), normalize_embeddings(c)
        return _hits(np.ascontiguousarray(c), q, top_k, threads=0, rescore=0)
    hits = [[] for _ in range(len(q))]
    for qs in range(0, len(q), query_chunk_size):
        for cs in range(0, len(c), corpus_chunk_size):
            scores = np.asarray(score_function(q[qs:qs + query_chunk_size], c[cs:cs + corpus_chunk_size]),
                                dtype=np.float32)
            k = min(top_k, scores.shape[1])
            best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
                np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
            for row in range(scores.shape[0]):
                hits[qs + row].extend((float(scores[row, j]), cs + int(j)) for j in best[row])
    out = []
    for h in hits:
        h.sort(key=lambda sc: (-sc[0], sc[1]))
        out.append([{"corpus_id": cid, "score": s} for s, cid in h[:top_k]])
    return out


def _hits(corpus, queries, top_k, threads, rescore):
    """ember_search over corpus (a float32 matrix or a path) as semantic_search's result."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    n = len(q)
    rows = np.empty(n * top_k, dtype=np.int64)
    scores = np.empty(n * top_k, dtype=np.float32)
    found = np.empty(n, dtype=np.int32)
    _ember.search(corpus, q, top_k, threads, rescore, rows, scores, found)
    rows, scores = rows.reshape(n, top_k).tolist(), scores.reshape(n, top_k).tolist()
    return [[{"corpus_id": rows[i][j], "score": scores[i][j]} for j in range(found[i])] for i in range(n)]
