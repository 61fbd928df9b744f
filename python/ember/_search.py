"""ember.search: exact top-k over the vectors `ember embed` wrote, without loading them."""
import os

from . import util
from ._model import _optional_int


def search(vectors, query_embeddings, top_k=10, rescore=4, threads=None):
    """The best top_k rows of stored vectors for each query, best first, by inner product:
    a list per query of {"corpus_id": row, "score": s} (util.semantic_search's shape).

    vectors      a directory of shards with its manifest.json (`ember embed --out DIR
                 --shard-rows N`), or one .npy of float32 rows; memory-mapped, so the
                 corpus need not fit in memory
    query_embeddings  a vector or a matrix, embedded as the corpus was (same model,
                 pooling, normalisation and --dimensions)
    rescore      compact corpora (--precision int8/uint8/binary/ubinary): score the best
                 rescore x top_k candidates again with the float query (0: do not)
    threads      CPU threads (None: every core)
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    q = util._matrix(query_embeddings, "query_embeddings")
    return util._hits(os.fspath(vectors), q, top_k, _optional_int("threads", threads),
                      _optional_int("rescore", rescore, 0))
