#!/usr/bin/env python3
"""huggingface_hub's InferenceClient against ember serve, unchanged but for
its base_url: sentence_similarity, which POSTs TEI's /similarity body to the
base URL itself, and ember's errors as the client's exceptions.

usage: test_hf_client.py EMBER_BINARY
"""
import json
import os
import sys

import huggingface_hub
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from harness import TINY, TOL, Server, max_diff, norm, require_minilm, run_tests

EMBER = None
SOURCE = "Machine learning is so easy."
OTHERS = ["Deep learning is so straightforward.", "This is so difficult, like rocket science.",
          "I can't believe how much I struggled with this.", "café déjà vu"]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def client(srv):
    return InferenceClient(base_url=f"http://127.0.0.1:{srv.port}", timeout=60)


def test_sentence_similarity():
    with Server(EMBER, TINY) as srv:
        st, vecs = srv.post("/embed", {"inputs": [SOURCE] + OTHERS, "normalize": False})
        assert st == 200
        want = [cosine(vecs[0], v) for v in vecs[1:]]
        got = client(srv).sentence_similarity(SOURCE, other_sentences=OTHERS)
        assert isinstance(got, list) and len(got) == len(OTHERS), got
        assert max_diff(got, want) < 10 * TOL, (got, want)
        st, plain = srv.post("/similarity", {"inputs": {"source_sentence": SOURCE, "sentences": OTHERS}})
        assert st == 200 and max_diff(plain, got) == 0, (plain, got)
        print(f"  scores {[round(x, 4) for x in got]}")


def test_docstring_example_with_minilm():
    """The scores huggingface_hub's docstring shows for its example, which
    the hosted all-MiniLM-L6-v2 gave."""
    with Server(EMBER, require_minilm()) as srv:
        got = client(srv).sentence_similarity(SOURCE, other_sentences=OTHERS[:3])
        want = [0.7785726189613342, 0.45876261591911316, 0.2906220555305481]
        print(f"  scores {got}")
        assert max_diff(got, want) < 1e-5, (got, want)


def test_errors_as_client_exceptions():
    with Server(EMBER, TINY, "--max-client-batch-size", "3") as srv:
        c = client(srv)
        for others, status, what in (([], 400, "cannot be empty"), (["a"] * 3, 422, "batch size 4"),
                                     (["a", ""], 422, "cannot be empty")):
            try:
                c.sentence_similarity(SOURCE, other_sentences=others)
                raise AssertionError(f"no error for {others!r}")
            except HfHubHTTPError as e:
                assert e.response.status_code == status, (others, e.response.status_code)
                body = json.loads(e.response.content)
                assert what in body["error"] and set(body) == {"error", "error_type"}, body
        assert len(c.sentence_similarity(SOURCE, other_sentences=["after"])) == 1


if __name__ == "__main__":
    EMBER = os.path.abspath(sys.argv[1])
    print(f"huggingface_hub {huggingface_hub.__version__}")
    sys.exit(run_tests([test_sentence_similarity, test_docstring_example_with_minilm, test_errors_as_client_exceptions]))
