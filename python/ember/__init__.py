"""ember: BERT-family text encoders (sentence-transformers models, bert-base, bge, ...)
on the CPU and on CUDA GPUs, with sentence-transformers' API.

    import ember
    model = ember.Model("weights/all-MiniLM-L6-v2")          # device="auto": CUDA when present
    vectors = model.encode(["hello world", "hi there"])     # numpy float32, (2, 384)
    hits = ember.util.semantic_search(model.encode("hi"), vectors, top_k=1)

ember.search(DIR, queries) searches the vectors `ember embed --out DIR` wrote.
ember.ray has a Ray Data stage (Dataset.map_batches) and ``python -m
ember.ray_embed`` embeds a Parquet or JSONL corpus on a Ray cluster.
"""
from . import _ember, util
from ._ember import EmberError
from ._model import Model
from ._search import search
from ._version import __version__

EMBER_VERSION = _ember.EMBER_VERSION


def cuda_device_count():
    """How many CUDA devices ember sees; -1 when it was built without CUDA."""
    return _ember.cuda_device_count()


__all__ = ["Model", "search", "EmberError", "util", "cuda_device_count", "EMBER_VERSION", "__version__"]
