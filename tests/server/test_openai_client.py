#!/usr/bin/env python3
"""The official `openai` Python client against ember serve, unchanged but for
its base_url: default (base64) and float encodings, dimensions, token-id
inputs, prompt_name as extra_body, and its error classes for ember's errors.

usage: test_openai_client.py EMBER_BINARY
"""
import json
import os
import sys
import time

import openai

from harness import BUSY_ARGS, TINY, TOL, Server, keep_busy, max_diff, norm, normalized, run_tests

EMBER = None
TEXTS = ["The cat sits outside", "A man is playing guitar", "I love pasta", "café déjà vu"]


def client(srv, **kw):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{srv.port}/v1", api_key="not-checked", max_retries=0,
                         timeout=60, **kw)


def test_default_base64_and_float():
    with Server(EMBER, TINY, "--served-model-name", "tiny-embedder") as srv:
        c = client(srv)
        st, tei = srv.post("/embed", {"inputs": TEXTS})
        assert st == 200
        raw = c.embeddings.with_raw_response.create(model="tiny-embedder", input=TEXTS)
        sent = json.loads(raw.http_request.content)
        assert sent["encoding_format"] == "base64", f"the client sent {sent}"  # what it asks for by default
        res = raw.parse()
        assert res.model == "tiny-embedder" and res.object == "list"
        assert [d.index for d in res.data] == list(range(len(TEXTS)))
        for d, v in zip(res.data, tei):
            emb = [float(x) for x in d.embedding]  # decoded by the client from little-endian float32
            assert len(emb) == 64 and max_diff(emb, v) < TOL
        assert res.usage.prompt_tokens == res.usage.total_tokens > len(TEXTS)
        res_f = c.embeddings.create(model="tiny-embedder", input=TEXTS, encoding_format="float")
        for a, b in zip(res_f.data, res.data):
            assert max_diff(a.embedding, [float(x) for x in b.embedding]) < TOL
        one = c.embeddings.create(model="x", input=TEXTS[0])
        assert len(one.data) == 1 and max_diff([float(x) for x in one.data[0].embedding], tei[0]) < TOL


def test_dimensions_and_token_ids():
    with Server(EMBER, TINY) as srv:
        c = client(srv)
        st, raw = srv.post("/embed", {"inputs": TEXTS[1], "normalize": False})
        res = c.embeddings.create(model="m", input=TEXTS[1], dimensions=12)
        emb = [float(x) for x in res.data[0].embedding]
        assert len(emb) == 12 and abs(norm(emb) - 1) < 10 * TOL and max_diff(emb, normalized(raw[0][:12])) < 10 * TOL
        st, toks = srv.post("/tokenize", {"inputs": TEXTS[1]})
        ids = [t["id"] for t in toks[0]]
        by_ids = c.embeddings.create(model="m", input=[ids, ids])
        by_text = c.embeddings.create(model="m", input=TEXTS[1])
        assert len(by_ids.data) == 2
        assert max_diff([float(x) for x in by_ids.data[1].embedding], [float(x) for x in by_text.data[0].embedding]) < TOL
        single_ids = c.embeddings.create(model="m", input=ids)  # a list of ints is one input
        assert len(single_ids.data) == 1


def test_errors_as_client_exceptions():
    with Server(EMBER, TINY, "--max-concurrent-requests", "1", "--auto-truncate", *BUSY_ARGS) as srv:
        c = client(srv)
        for bad, what in (("", "empty"), ([], "empty"), (["a"] * 2001, "batch size"), ([[2, 100000]], "vocabulary")):
            try:
                c.embeddings.create(model="m", input=bad)
                raise AssertionError(f"no error for {bad!r}")
            except openai.BadRequestError as e:
                assert e.status_code == 400 and what in str(e), e
                assert e.type == "invalid_request_error", e.type
        try:
            c.embeddings.create(model="m", input="a", dimensions=1000)
            raise AssertionError("no error for dimensions=1000")
        except openai.BadRequestError as e:
            assert "dimensions" in str(e)
        # one request in flight: the next is overloaded
        threads, out = keep_busy(srv, path="/v1/embeddings")
        try:
            c.embeddings.create(model="m", input="x")
            raise AssertionError("no 429")
        except openai.RateLimitError as e:
            assert e.status_code == 429 and e.code == "rate_limit_exceeded", e
        threads[0].join(600)
        assert out[0][0] == 200 and out[0][1]["data"][0]["object"] == "embedding"
        assert len(c.embeddings.create(model="m", input="after").data) == 1


def test_prompt_name_as_extra_body():
    """prompt_name through the client's extra_body, the way other OpenAI-compatible servers take it."""
    prompts = os.path.join(os.path.dirname(TINY), "tiny-st-prompts-exclude")
    with Server(EMBER, prompts) as srv:
        c = client(srv)
        st, tei = srv.post("/embed", {"inputs": TEXTS, "prompt_name": "query"})
        st0, plain = srv.post("/embed", {"inputs": TEXTS})
        assert st == st0 == 200
        res = c.embeddings.create(model="m", input=TEXTS, extra_body={"prompt_name": "query"})
        for d, v, p in zip(res.data, tei, plain):
            emb = [float(x) for x in d.embedding]
            assert max_diff(emb, v) < TOL and max_diff(emb, p) > 1e-3
        try:
            c.embeddings.create(model="m", input="a", extra_body={"prompt_name": "quary"})
            raise AssertionError("no error for an unknown prompt name")
        except openai.BadRequestError as e:
            assert e.status_code == 400 and "'quary'" in str(e) and "passage" in str(e), e


if __name__ == "__main__":
    EMBER = os.path.abspath(sys.argv[1])
    print(f"openai {openai.__version__}")
    sys.exit(run_tests([test_default_base64_and_float, test_dimensions_and_token_ids, test_errors_as_client_exceptions,
                               test_prompt_name_as_extra_body]))
