#!/usr/bin/env python3
"""ember serve over real sockets: every route and error, bad input, batching,
disconnects, slow clients, shutdown, and agreement with `ember embed`.

usage: test_server.py EMBER_BINARY [TEST_NAME...]
Most tests use the tiny random BERT in tests/data/tiny-bert; the ones that
compare with `ember embed` on a real model need weights/all-MiniLM-L6-v2.
"""
import base64
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

from harness import (BUSY_ARGS, DEVICE, MINILM, TINY, TOL, Server, http_head, keep_busy, max_diff, norm,
                     normalized, raw_socket, read_response, require_minilm, run_tests)

EMBER = None  # set in main
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "Hello, World! What's up?",
    "café déjà vu naïve résumé",
    "time flies like an arrow; fruit flies like a banana.",
    "a",
    "unaffable people are rare 123 456",
]
LONG = " ".join(["the end of a very long text"] * 40)  # over tiny-bert's 64 tokens and MiniLM's 256


def cli_ids(model, text, special=True):
    out = subprocess.run([EMBER, "tokenize", "-m", model, "--ids", "--no-truncate"] + ([] if special else ["--no-special"]) + [text],
                         check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def cli_embed(model, texts):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
    try:
        out = subprocess.run([EMBER, "embed", "-m", model, "--device", DEVICE, "-q", "--format", "jsonl", f.name], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    return [json.loads(line) for line in out.splitlines()]


def expect_error(srv, path, body, status, error_type, contains=None):
    st, out = srv.post(path, body)
    assert st == status, f"{path} {str(body)[:80]}: status {st}, expected {status}: {out}"
    if path in ("/v1/embeddings", "/embeddings"):
        assert set(out) == {"error"} and {"message", "type", "param", "code"} <= set(out["error"]), out
        msg = out["error"]["message"]
        assert out["error"]["type"] == error_type, out
    else:
        assert set(out) == {"error", "error_type"}, out
        assert out["error_type"] == error_type, out
        msg = out["error"]
    if contains:
        assert contains in msg, f"{msg!r} lacks {contains!r}"
    return msg


# ---- routes ----------------------------------------------------------------


def test_info_health_metrics():
    with Server(EMBER, TINY, "--served-model-name", "acme/tiny", "--max-client-batch-size", "7") as srv:
        st, hdrs, body = srv.request("GET", "/health")
        assert st == 200 and body == b"", (st, body)
        for path in ("/", "/ping"):
            assert srv.request("GET", path)[0] == 200
        st, hdrs, body = srv.request("GET", "/info")
        info = json.loads(body)
        assert st == 200 and hdrs["content-type"] == "application/json"
        assert info["model_id"] == "acme/tiny"
        assert info["model_dtype"] == "float32"
        assert info["model_type"] == {"embedding": {"pooling": "cls"}}
        assert info["max_input_length"] == 64  # tiny-bert's max_position_embeddings
        assert info["max_client_batch_size"] == 7
        assert info["max_batch_tokens"] == (4096 if DEVICE == "cpu" else 32768) and info["max_concurrent_requests"] == 512
        assert info["auto_truncate"] is False and info["version"] == "0.1.0"
        assert {"max_batch_requests", "tokenization_workers", "model_sha", "sha", "docker_label"} <= set(info)
        st, hdrs, body = srv.request("GET", "/metrics")
        assert st == 200 and hdrs["content-type"].startswith("text/plain"), hdrs
        text = body.decode()
        for name in ("te_request_count", "te_request_success", "te_request_failure", "te_request_duration_bucket",
                     "te_request_tokenization_duration_sum", "te_request_queue_duration_count",
                     "te_request_inference_duration_sum", "te_batch_next_size_bucket", "te_batch_next_tokens_sum",
                     "te_queue_size", "te_request_input_length_count"):
            assert name in text, f"/metrics lacks {name}"


def test_embed_shapes_and_normalize():
    with Server(EMBER, TINY) as srv:
        st, one = srv.post("/embed", {"inputs": TEXTS[0]})
        assert st == 200 and len(one) == 1 and len(one[0]) == 64, (st, one)
        assert abs(norm(one[0]) - 1) < 10 * TOL, norm(one[0])
        st, many = srv.post("/embed", {"inputs": TEXTS})
        assert st == 200 and len(many) == len(TEXTS) and all(len(v) == 64 for v in many)
        assert max_diff(many[0], one[0]) < TOL
        st, raw = srv.post("/embed", {"inputs": TEXTS, "normalize": False})
        assert st == 200
        assert abs(norm(raw[0]) - 1) > 1e-3, "normalize=false gave a unit vector"
        for r, n in zip(raw, many):
            assert max_diff(normalized(r), n) < 10 * TOL
        # dimensions: cut, then normalise (or not)
        st, cut = srv.post("/embed", {"inputs": TEXTS, "dimensions": 8})
        assert st == 200 and all(len(v) == 8 for v in cut)
        for r, c in zip(raw, cut):
            assert max_diff(normalized(r[:8]), c) < 10 * TOL
        st, cut_raw = srv.post("/embed", {"inputs": TEXTS, "dimensions": 8, "normalize": False})
        assert st == 200 and max_diff(cut_raw[1], raw[1][:8]) < TOL
        # the SageMaker / root aliases
        assert srv.post("/", {"inputs": "a"})[0] == 200 and srv.post("/invocations", {"inputs": "a"})[0] == 200
        # TEI's timing headers
        st, hdrs, _ = srv.request("POST", "/embed", {"inputs": ["a", "b c"]})
        for h in ("x-compute-time", "x-compute-tokens", "x-compute-characters", "x-queue-time", "x-inference-time",
                  "x-tokenization-time", "x-total-time"):
            assert h in hdrs, f"missing {h}"
        assert hdrs["x-compute-tokens"] == "7" and hdrs["x-compute-characters"] == "4", hdrs


def test_token_id_inputs():
    with Server(EMBER, TINY) as srv:
        ids = cli_ids(TINY, TEXTS[1])
        st, by_text = srv.post("/embed", {"inputs": TEXTS[1]})
        st2, by_ids = srv.post("/embed", {"inputs": ids})
        assert st == 200 and st2 == 200 and len(by_ids) == 1
        assert max_diff(by_text[0], by_ids[0]) < TOL
        st, mixed = srv.post("/embed", {"inputs": [TEXTS[0], ids, [2, 3]]})
        assert st == 200 and len(mixed) == 3 and max_diff(mixed[1], by_text[0]) < TOL
        st, oa = srv.post("/v1/embeddings", {"input": [ids, ids[:3]], "model": "m"})
        assert st == 200 and max_diff(oa["data"][0]["embedding"], by_text[0]) < TOL
        assert oa["usage"]["prompt_tokens"] == len(ids) + 3
        expect_error(srv, "/embed", {"inputs": [2, 600, 3]}, 422, "validation", "outside the vocabulary")
        expect_error(srv, "/embed", {"inputs": [2, -1, 3]}, 422, "validation", "outside the vocabulary")
        expect_error(srv, "/embed", {"inputs": [[2, 1.5, 3]]}, 422, "validation", "integer")
        expect_error(srv, "/embed", {"inputs": [[]]}, 422, "validation", "empty")
        expect_error(srv, "/v1/embeddings", {"input": [[2, 99999]]}, 400, "invalid_request_error", "vocabulary")


def test_embed_all():
    with Server(EMBER, TINY) as srv:
        st, out = srv.post("/embed_all", {"inputs": TEXTS[:3]})
        assert st == 200 and len(out) == 3
        for text, rows in zip(TEXTS[:3], out):
            assert len(rows) == len(cli_ids(TINY, text)) and all(len(r) == 64 for r in rows)
        # tiny-bert pools the [CLS] row: /embed without normalisation is row 0
        st, pooled = srv.post("/embed", {"inputs": TEXTS[:3], "normalize": False})
        for rows, p in zip(out, pooled):
            assert max_diff(rows[0], p) < TOL
        st, single = srv.post("/embed_all", {"inputs": "a"})
        assert st == 200 and len(single) == 1 and len(single[0]) == 3  # [CLS] a [SEP]


def test_tokenize():
    with Server(EMBER, TINY) as srv:
        text = "Héllo wörld, ça va?"
        st, out = srv.post("/tokenize", {"inputs": text})
        assert st == 200 and len(out) == 1
        toks = out[0]
        assert [t["id"] for t in toks] == cli_ids(TINY, text)
        assert toks[0] == {"id": 2, "text": "[CLS]", "special": True, "start": None, "stop": None}
        assert toks[-1]["text"] == "[SEP]" and toks[-1]["special"] is True
        for t in toks[1:-1]:
            assert t["special"] is False
            # byte offsets into the input (as TEI), and the text they cover
            assert text.encode()[t["start"]:t["stop"]].decode() == t["text"], t
        assert toks[1]["text"] == "Héllo" and toks[1]["start"] == 0 and toks[1]["stop"] == 6
        st, out = srv.post("/tokenize", {"inputs": [text, "a b"], "add_special_tokens": False})
        assert st == 200 and [t["id"] for t in out[0]] == cli_ids(TINY, text, special=False)
        assert [t["text"] for t in out[1]] == ["a", "b"]
        # no truncation on /tokenize, as TEI
        st, out = srv.post("/tokenize", {"inputs": LONG})
        assert st == 200 and len(out[0]) == len(cli_ids(TINY, LONG)) > 64
        expect_error(srv, "/tokenize", {"inputs": ""}, 422, "validation", "empty")
        expect_error(srv, "/tokenize", {"inputs": []}, 400, "empty")
        expect_error(srv, "/tokenize", {"inputs": [[2, 3]]}, 422, "validation")


def test_truncation():
    with Server(EMBER, TINY) as srv:
        msg = expect_error(srv, "/embed", {"inputs": LONG}, 422, "validation", "must have less than 64 tokens")
        assert "Given:" in msg
        expect_error(srv, "/embed_all", {"inputs": ["a", LONG]}, 422, "validation", "64 tokens")
        st, right = srv.post("/embed", {"inputs": LONG, "truncate": True})
        assert st == 200
        st, left = srv.post("/embed", {"inputs": LONG, "truncate": True, "truncation_direction": "left"})
        assert st == 200 and max_diff(left[0], right[0]) > 1e-3
        st, left2 = srv.post("/embed", {"inputs": LONG, "truncate": True, "truncation_direction": "Left"})
        assert st == 200 and max_diff(left[0], left2[0]) < TOL
        # the cut keeps [CLS] ... [SEP] around the first (right) or last (left) 62 text tokens
        body = cli_ids(TINY, LONG, special=False)
        st, r_ids = srv.post("/embed", {"inputs": [[2] + body[:62] + [3], [2] + body[-62:] + [3]]})
        assert max_diff(r_ids[0], right[0]) < TOL and max_diff(r_ids[1], left[0]) < TOL
        # over-long token ids: refused, or cut as asked
        ids = [2] + body + [3]
        expect_error(srv, "/embed", {"inputs": ids}, 422, "validation", "less than 64")
        st, cut = srv.post("/embed", {"inputs": ids, "truncate": True})
        assert st == 200
        st, ref = srv.post("/embed", {"inputs": ids[:64]})
        assert max_diff(cut[0], ref[0]) < TOL
        st, oa = srv.post("/v1/embeddings", {"input": LONG})
        assert st == 400 and "64 tokens" in oa["error"]["message"]
    with Server(EMBER, TINY, "--auto-truncate") as srv:
        st, auto = srv.post("/embed", {"inputs": LONG})
        assert st == 200 and max_diff(auto[0], right[0]) < TOL
        expect_error(srv, "/embed", {"inputs": LONG, "truncate": False}, 422, "validation", "64 tokens")
        st, oa = srv.post("/v1/embeddings", {"input": LONG})
        assert st == 200 and max_diff(oa["data"][0]["embedding"], right[0]) < TOL
        assert json.loads(srv.request("GET", "/info")[2])["auto_truncate"] is True


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def test_similarity():
    """TEI's /similarity (and / or /invocations with its body): the cosine of
    the source's embedding with each sentence's; errors in TEI's shapes."""
    with Server(EMBER, TINY, "--max-client-batch-size", "4") as srv:
        src, others = TEXTS[0], TEXTS[1:4]
        st, vecs = srv.post("/embed", {"inputs": [src] + others, "normalize": False})
        assert st == 200
        want = [cosine(vecs[0], v) for v in vecs[1:]]
        body = {"inputs": {"source_sentence": src, "sentences": others}}
        for path in ("/similarity", "/", "/invocations"):
            st, got = srv.post(path, body)
            assert st == 200 and isinstance(got, list) and len(got) == 3, (path, st, got)
            assert max_diff(got, want) < 10 * TOL, (path, got, want)
        st, got = srv.post("/similarity", {"inputs": {"source_sentence": src, "sentences": [src]}, "parameters": {}})
        assert st == 200 and abs(got[0] - 1) < 10 * TOL, got
        st, got = srv.post("/", {"inputs": src})  # / with a string is still /embed
        assert st == 200 and len(got) == 1 and len(got[0]) == 64
        long_body = {"inputs": {"source_sentence": src, "sentences": [LONG]}}
        expect_error(srv, "/similarity", long_body, 422, "validation", "must have less than 64 tokens")
        st, got = srv.post("/similarity", dict(long_body, parameters={"truncate": True}))
        assert st == 200 and len(got) == 1, (st, got)
        st, left = srv.post("/similarity", dict(long_body, parameters={"truncate": True, "truncation_direction": "left"}))
        assert st == 200 and len(left) == 1, (st, left)
        expect_error(srv, "/similarity", {"inputs": {"source_sentence": src, "sentences": []}}, 400, "empty",
                     "`inputs.sentences` cannot be empty")
        expect_error(srv, "/similarity", {"inputs": {"source_sentence": src, "sentences": ["a"] * 4}}, 422,
                     "validation", "batch size 5 > maximum allowed batch size 4")
        for bad in ({}, {"inputs": src}, {"inputs": {"sentences": ["a"]}}, {"inputs": {"source_sentence": src}},
                    {"inputs": {"source_sentence": 3, "sentences": ["a"]}}):
            expect_error(srv, "/similarity", bad, 422, "validation", "`inputs` must be")
        expect_error(srv, "/similarity", {"inputs": {"source_sentence": src, "sentences": ["a", 7]}}, 422,
                     "validation", "`inputs.sentences[1]` must be a string")
        expect_error(srv, "/similarity", {"inputs": {"source_sentence": "", "sentences": ["a"]}}, 422,
                     "validation", "cannot be empty")
        expect_error(srv, "/similarity", dict(body, parameters=[1]), 422, "validation", "`parameters` must be")
        expect_error(srv, "/similarity", dict(body, parameters={"truncation_direction": "up"}), 422, "validation",
                     "truncation_direction")
        expect_error(srv, "/embed", body, 422, "validation")  # only / and /invocations look at the body
        assert srv.request("GET", "/similarity")[0] == 405


CE = os.path.join(os.path.dirname(TINY), "tiny-cross-encoder")
CE3 = CE + "-3"
CE_REF = CE + "-ref"


def ref_npy(name):
    """A float32 .npy of tools/make_tiny_cross_encoder.py, as a list of rows."""
    with open(os.path.join(CE_REF, name), "rb") as f:
        b = f.read()
    hl = struct.unpack("<H", b[8:10])[0]
    shape = eval(re.search(r"'shape': (\([^)]*\))", b[10:10 + hl].decode()).group(1))
    v = struct.unpack(f"<{shape[0] * shape[1]}f", b[10 + hl:])
    return [list(v[i * shape[1]:(i + 1) * shape[1]]) for i in range(shape[0])]


def test_rerank_and_predict():
    """TEI's /rerank and /predict on the tiny cross-encoders, against
    transformers' logits (tools/make_tiny_cross_encoder.py): TEI's sigmoid /
    softmax, best first, / by the model's kind, /info's model_type, errors."""
    with open(os.path.join(CE_REF, "pairs.json")) as f:
        pairs = json.load(f)
    logits1, logits3, single3 = ref_npy("logits1.npy"), ref_npy("logits3.npy"), ref_npy("single3.npy")
    sig = lambda x: 1 / (1 + math.exp(-x))
    with Server(EMBER, CE, "--max-client-batch-size", "8") as srv:
        q = pairs[0][0]
        texts = [p[1] for p in pairs[:2]]  # the first query's pairs in the references
        for path in ("/rerank", "/", "/invocations"):
            st, got = srv.post(path, {"query": q, "texts": texts, "return_text": path == "/rerank"})
            assert st == 200 and len(got) == 2, (path, st, got)
            assert got[0]["score"] >= got[1]["score"], got
            for r in got:
                assert abs(r["score"] - sig(logits1[r["index"]][0])) < 1e-5, (r, logits1)
                assert ("text" in r) == (path == "/rerank") and r.get("text", texts[r["index"]]) == texts[r["index"]]
        st, raw = srv.post("/rerank", {"query": q, "texts": texts, "raw_scores": True})
        assert st == 200 and all(abs(r["score"] - logits1[r["index"]][0]) < 2e-5 for r in raw), raw
        st, lng = srv.post("/rerank", {"query": pairs[6][0], "texts": [pairs[6][1]], "raw_scores": True,
                                       "truncate": True})
        assert st == 200 and abs(lng[0]["score"] - logits1[6][0]) < 2e-5, (lng, logits1[6])  # cut longest first
        expect_error(srv, "/rerank", {"query": pairs[6][0], "texts": [pairs[6][1]]}, 422, "validation",
                     "`texts` must have less than 64 tokens")  # TEI's default: --auto-truncate off
        st, one = srv.post("/predict", {"inputs": pairs[0]})
        assert st == 200 and one[0]["label"] == "LABEL_0" and abs(one[0]["score"] - sig(logits1[0][0])) < 1e-5, one
        expect_error(srv, "/rerank", {"query": q, "texts": []}, 400, "empty", "`texts` cannot be empty")
        expect_error(srv, "/rerank", {"query": q, "texts": ["a"] * 9}, 422, "validation", "batch size 9")
        expect_error(srv, "/rerank", {"texts": ["a"]}, 422, "validation", "`query` must be a string")
        expect_error(srv, "/rerank", {"query": q, "texts": ["a", 1]}, 422, "validation", "`texts[1]` must be a string")
        expect_error(srv, "/rerank", {"query": q, "texts": ["a"], "raw_scores": "yes"}, 422, "validation", "raw_scores")
        for path, body in (("/embed", {"inputs": "a"}), ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]}})):
            expect_error(srv, path, body, 424, "backend", "model is not an embedding model")
        st, info = srv.post("/tokenize", {"inputs": "a"})
        assert st == 200
        info = json.loads(srv.request("GET", "/info")[2])
        assert info["model_type"] == {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}, info
    with Server(EMBER, CE3) as srv:
        labels = ["contradiction", "entailment", "neutral"]
        st, got = srv.post("/predict", {"inputs": [pairs[0], [pairs[1][0]]]})  # a pair and a single text
        assert st == 200 and len(got) == 2, got
        for preds, lg in ((got[0], logits3[0]), (got[1], single3[1])):
            z = sum(math.exp(x) for x in lg)
            want = {labels[j]: math.exp(lg[j]) / z for j in range(3)}
            assert [p["score"] for p in preds] == sorted((p["score"] for p in preds), reverse=True), preds
            assert all(abs(p["score"] - want[p["label"]]) < 1e-5 for p in preds), (preds, want)
        for path in ("/predict", "/"):
            st, raw = srv.post(path, {"inputs": pairs[2][0], "raw_scores": True})
            assert st == 200 and all(abs(p["score"] - single3[2][labels.index(p["label"])]) < 2e-5 for p in raw), raw
        expect_error(srv, "/rerank", {"query": "q", "texts": ["a"]}, 424, "backend", "model is not a re-ranker model")
        for bad in ([], ["a", "b", "c"], [["a", "b", "c"]], [1], {"a": 1}):
            expect_error(srv, "/predict", {"inputs": bad}, 400 if bad == [] else 422, "empty" if bad == [] else "validation")
        info = json.loads(srv.request("GET", "/info")[2])
        assert info["model_type"]["classifier"]["id2label"] == {"0": "contradiction", "1": "entailment", "2": "neutral"}
    with Server(EMBER, TINY) as srv:
        expect_error(srv, "/rerank", {"query": "q", "texts": ["a"]}, 424, "backend", "model is not a re-ranker model")
        expect_error(srv, "/predict", {"inputs": "a"}, 424, "backend", "model is not a classifier model")


def test_openai_shapes():
    with Server(EMBER, TINY, "--served-model-name", "text-embedding-tiny") as srv:
        st, tei = srv.post("/embed", {"inputs": TEXTS})
        st, out = srv.post("/v1/embeddings", {"input": TEXTS, "model": "whatever"})
        assert st == 200, out
        assert out["object"] == "list" and out["model"] == "text-embedding-tiny"
        assert [d["index"] for d in out["data"]] == list(range(len(TEXTS)))
        assert all(d["object"] == "embedding" for d in out["data"])
        for d, v in zip(out["data"], tei):
            assert max_diff(d["embedding"], v) < TOL
        n_tok = sum(len(cli_ids(TINY, t)) for t in TEXTS)
        assert out["usage"] == {"prompt_tokens": n_tok, "total_tokens": n_tok}, out["usage"]
        st, b64 = srv.post("/embeddings", {"input": TEXTS, "model": "m", "encoding_format": "base64"})
        assert st == 200
        for d, v in zip(b64["data"], out["data"]):
            raw = base64.b64decode(d["embedding"])
            assert len(raw) == 64 * 4
            assert list(struct.unpack("<64f", raw)) == [struct.unpack("<f", struct.pack("<f", x))[0] for x in v["embedding"]]
        st, single = srv.post("/v1/embeddings", {"input": TEXTS[2], "model": "m", "dimensions": 16, "user": "u"})
        assert st == 200 and len(single["data"]) == 1 and len(single["data"][0]["embedding"]) == 16
        assert abs(norm(single["data"][0]["embedding"]) - 1) < 10 * TOL
        st, raw = srv.post("/embed", {"inputs": TEXTS[2], "normalize": False})
        assert max_diff(normalized(raw[0][:16]), single["data"][0]["embedding"]) < 10 * TOL
        expect_error(srv, "/v1/embeddings", {"input": "a", "encoding_format": "hex"}, 400, "invalid_request_error",
                     "encoding_format")
        expect_error(srv, "/v1/embeddings", {"input": "a", "dimensions": 65}, 400, "invalid_request_error", "dimensions")
        expect_error(srv, "/v1/embeddings", {"input": "a", "model": 3}, 400, "invalid_request_error", "model")
        expect_error(srv, "/v1/embeddings", {"input": []}, 400, "invalid_request_error", "empty")
        expect_error(srv, "/v1/embeddings", {"input": ""}, 400, "invalid_request_error", "empty")
        expect_error(srv, "/v1/embeddings", {"inputs": "a"}, 400, "invalid_request_error", "missing field `input`")
        expect_error(srv, "/v1/embeddings", "{nope", 400, "invalid_request_error", "JSON")


# ---- bad input ---------------------------------------------------------------


def test_bad_input():
    with Server(EMBER, TINY, "--payload-limit", "100000") as srv:
        cases = [
            ("/embed", "{\"inputs\": [\"a\"", 422, "validation", "JSON"),
            ("/embed", "", 422, "validation", "JSON"),
            ("/embed", "[1, 2]", 422, "validation", "JSON object"),
            ("/embed", {"input": "a"}, 422, "validation", "missing field `inputs`"),
            ("/embed", {"inputs": 5}, 422, "validation", "must be"),
            ("/embed", {"inputs": None}, 422, "validation", "must be"),
            ("/embed", {"inputs": {"a": 1}}, 422, "validation", "must be"),
            ("/embed", {"inputs": ["a", 5]}, 422, "validation", "`inputs[1]`"),
            ("/embed", {"inputs": [1.5]}, 422, "validation", "`inputs[0]`"),
            ("/embed", {"inputs": ""}, 422, "validation", "cannot be empty"),
            ("/embed", {"inputs": ["a", ""]}, 422, "validation", "cannot be empty"),
            ("/embed", {"inputs": []}, 400, "empty", "cannot be empty"),
            ("/embed", {"inputs": "a", "normalize": "yes"}, 422, "validation", "`normalize`"),
            ("/embed", {"inputs": "a", "truncate": 1}, 422, "validation", "`truncate`"),
            ("/embed", {"inputs": "a", "dimensions": 0}, 422, "validation", "`dimensions`"),
            ("/embed", {"inputs": "a", "dimensions": "8"}, 422, "validation", "`dimensions`"),
            ("/embed", {"inputs": "a", "dimensions": 8.0}, 422, "validation", "`dimensions`"),
            ("/embed", {"inputs": "a", "truncation_direction": "up"}, 422, "validation", "truncation_direction"),
            ("/embed", {"inputs": "a", "prompt_name": "query"}, 422, "validation", "prompt_name"),
            ("/embed_all", {"inputs": 7}, 422, "validation", "must be"),
            ("/tokenize", {"inputs": "a", "add_special_tokens": "no"}, 422, "validation", "add_special_tokens"),
            ("/embed", {"inputs": ["a"] * 33}, 422, "validation", "batch size 33 > maximum allowed batch size 32"),
        ]
        for path, body, status, etype, contains in cases:
            expect_error(srv, path, body, status, etype, contains)
        # invalid UTF-8 and a lone surrogate inside a JSON string: not JSON
        st, _, body = srv.request("POST", "/embed", b'{"inputs": "caf\xe9 \xff\xfe"}')
        assert st == 422 and json.loads(body)["error_type"] == "validation", body
        st, _, body = srv.request("POST", "/embed", b'{"inputs": "a \\ud800 b"}')
        assert st == 422, body
        # nesting deeper than jansson's limit, and numbers out of range
        expect_error(srv, "/embed", "[" * 50000 + "]" * 50000, 422, "validation", "JSON")
        expect_error(srv, "/embed", '{"inputs": [2, 99999999999999999999999]}', 422, "validation", "JSON")
        expect_error(srv, "/embed", '{"inputs": "a", "dimensions": 1e999}', 422, "validation", "JSON")
        # NUL and control characters are text like any other
        st, out = srv.post("/embed", {"inputs": "a\u0000b\u0001c"})
        assert st == 200 and len(out[0]) == 64
        # unknown fields are ignored (serde's default)
        assert srv.post("/embed", {"inputs": "a", "foo": [1, {"b": None}]})[0] == 200
        # routes and methods
        st, hdrs, body = srv.request("GET", "/nope")
        assert st == 404 and json.loads(body)["error"].startswith("no route"), body
        st, hdrs, body = srv.request("GET", "/embed")
        assert st == 405 and hdrs.get("allow") == "POST", (st, hdrs)
        st, hdrs, body = srv.request("DELETE", "/info")
        assert st == 405
        st, hdrs, body = srv.request("DELETE", "/")  # GET is health, POST is embed
        assert st == 405 and hdrs.get("allow") == "GET, HEAD, POST", (st, hdrs)
        # a URL that is not UTF-8, or is cut inside a character in the message: still a JSON body
        for path in ("/%ff", "/%c3", "/" + "%c3%a9" * 150):
            st, hdrs, body = srv.request("GET", path)
            assert st == 404 and json.loads(body)["error"].startswith("no route"), (st, body[:100])
        # a body over --payload-limit: 413 from its Content-Length, before reading it
        big = json.dumps({"inputs": ["word " * 20] * 2000}).encode()
        st, hdrs, body = srv.request("POST", "/embed", big)
        assert st == 413 and json.loads(body)["error_type"] == "validation", (st, body[:200])
        st, _, body = srv.request("POST", "/v1/embeddings", big)
        assert st == 413 and json.loads(body)["error"]["code"] == "payload_too_large"
        # ... and a chunked body with no Content-Length, from what arrives
        s = raw_socket(srv.port)
        s.sendall(http_head("POST", "/embed", extra="Transfer-Encoding: chunked\r\n"))
        for i in range(0, len(big), 30000):
            part = big[i:i + 30000]
            s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        st, body = read_response(s)
        s.close()
        assert st == 413, (st, body)
        # the server is still serving, and counted every failure by kind
        assert srv.post("/embed", {"inputs": ["still", "serving"]})[0] == 200
        m = srv.metrics()
        assert m['te_request_failure{err="validation"}'] >= 20, m
        assert m['te_request_failure{err="payload_too_large"}'] == 3
        assert m['te_request_failure{err="empty"}'] == 1
        assert m['te_request_failure{err="batch_size"}'] == 1
        assert m['te_request_failure{err="not_found"}'] >= 1


def test_many_inputs_in_one_request():
    n = 3000
    texts = [f"text number {i} of many" for i in range(n)]
    with Server(EMBER, TINY, "--max-client-batch-size", str(n), "--payload-limit", "4000000") as srv:
        st, out = srv.post("/embed", {"inputs": texts})
        assert st == 200 and len(out) == n
        for i in (0, 1234, n - 1):
            st, one = srv.post("/embed", {"inputs": texts[i]})
            assert max_diff(one[0], out[i]) < TOL, i
        st, oa = srv.post("/v1/embeddings", {"input": texts, "encoding_format": "base64"})
        assert st == 200 and len(oa["data"]) == n and oa["data"][-1]["index"] == n - 1
        st, toks = srv.post("/tokenize", {"inputs": texts})
        assert st == 200 and len(toks) == n
        m = srv.metrics()
        # merged into batches by the 4096-token budget, not one per input
        assert m["te_batch_next_size_count"] < n, m["te_batch_next_size_count"]
        expect_error(srv, "/embed", {"inputs": ["a"] * (n + 1)}, 422, "validation", "batch size")


# ---- concurrency ----------------------------------------------------------------


def test_overload_429():
    with Server(EMBER, TINY, "--max-concurrent-requests", "2", *BUSY_ARGS) as srv:
        # a client still sending its body holds no place
        body = json.dumps({"inputs": "held"}).encode()
        held = raw_socket(srv.port)
        held.sendall(http_head("POST", "/embed", len(body)) + body[:5])
        threads, out = keep_busy(srv, count=2)  # two requests in flight
        st, err = srv.post("/embed", {"inputs": "third"})
        assert st == 429 and err["error_type"] == "overloaded", (st, err)
        st, err = srv.post("/v1/embeddings", {"input": "third"})
        assert st == 429 and err["error"]["type"] == "rate_limit_error", (st, err)
        assert srv.request("GET", "/health")[0] == 200  # GETs are not counted
        for t in threads:
            t.join(600)
        assert [o[0] for o in out] == [200, 200], [o[0] for o in out]
        held.sendall(body[5:])
        st, data = read_response(held)
        assert st == 200 and len(json.loads(data)[0]) == 64, (st, data[:100])
        held.close()
        assert srv.post("/embed", {"inputs": "after"})[0] == 200
        assert srv.metrics()['te_request_failure{err="overloaded"}'] == 2


def test_concurrent_clients_are_batched():
    model = MINILM if os.path.isfile(os.path.join(MINILM, "model.safetensors")) else TINY
    n = 48
    with Server(EMBER, model, "--max-client-batch-size", str(n)) as srv:
        st, ref = srv.post("/embed", {"inputs": [f"client {i} says hello" for i in range(n)]})
        assert st == 200
        before = srv.metrics()
        results = [None] * n
        barrier = threading.Barrier(n)

        def client(i):
            c = srv.conn()
            c.connect()
            barrier.wait()
            results[i] = srv.request("POST", "/embed", {"inputs": f"client {i} says hello"}, conn=c)
            c.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i, r in enumerate(results):
            assert r and r[0] == 200, (i, r)
            assert max_diff(json.loads(r[2])[0], ref[i]) < TOL, i
        after = srv.metrics()
        batches = after["te_batch_next_size_count"] - before["te_batch_next_size_count"]
        inputs = after["te_batch_next_size_sum"] - before["te_batch_next_size_sum"]
        assert inputs == n, inputs
        if model == MINILM and DEVICE == "cpu":  # a forward pass takes long enough for the others to queue
            assert batches < n / 2, f"{n} concurrent single-text requests ran as {batches} batches"
        print(f"  {n} concurrent clients ran as {batches:.0f} batches ({os.path.basename(model)})")


def test_disconnected_client_is_not_computed():
    with Server(EMBER, TINY, *BUSY_ARGS) as srv:
        n = 1000
        threads, out = keep_busy(srv, n=n)  # A: queued and running, one input per batch
        # B: sends, and hangs up before its answer
        body = json.dumps({"inputs": ["gone before its answer"] * 5}).encode()
        s = raw_socket(srv.port)
        s.sendall(http_head("POST", "/embed", len(body)) + body)
        s.close()
        threads[0].join(600)
        assert out[0][0] == 200 and len(out[0][1]) == n
        deadline = time.time() + 30
        while srv.metrics()['te_request_failure{err="disconnected"}'] < 1:
            assert time.time() < deadline, "the disconnect was never noticed"
            time.sleep(0.05)
        m = srv.metrics()
        assert m["te_batch_next_size_sum"] == n, f"ran {m['te_batch_next_size_sum']} inputs, not {n}: B was computed"
        assert m["ember_requests_in_flight"] == 0
        assert srv.post("/embed", {"inputs": "still serving"})[0] == 200


def test_slow_clients():
    with Server(EMBER, TINY, "--idle-timeout", "2") as srv:
        body = json.dumps({"inputs": ["slowly", "sent"]}).encode()
        s = raw_socket(srv.port)
        s.sendall(http_head("POST", "/embed", len(body)))
        t0 = time.time()
        fast = []
        for i, byte in enumerate(body):  # one byte every 50 ms, 1.7 s in all
            s.sendall(bytes([byte]))
            if i % 8 == 0:  # meanwhile other clients are served at once
                t1 = time.time()
                st, out = srv.post("/embed", {"inputs": f"fast {i}"})
                fast.append(time.time() - t1)
                assert st == 200
            time.sleep(0.05)
        st, data = read_response(s)
        assert st == 200 and len(json.loads(data)) == 2
        assert time.time() - t0 > 1 and max(fast) < 1.0, fast
        s.close()
        # a client that stops sending is dropped after --idle-timeout
        s = raw_socket(srv.port, timeout=20)
        s.sendall(http_head("POST", "/embed", len(body)) + body[:4])
        t0 = time.time()
        try:
            got = s.recv(100)
        except ConnectionResetError:
            got = b""
        assert got == b"" and 1.5 < time.time() - t0 < 10, (got, time.time() - t0)
        s.close()
        assert srv.post("/embed", {"inputs": "still serving"})[0] == 200


def test_abusive_clients():
    """Clients that vanish after sending, hang up mid-body, reset, send
    garbage or too much, all at once: each gets its answer or is dropped,
    and the server keeps serving with nothing left over."""
    import random
    import socket

    bodies = [
        ("/embed", {"inputs": "hello"}), ("/embed", {"inputs": ["a b c"] * 20}), ("/embed_all", {"inputs": ["x", "y z"]}),
        ("/tokenize", {"inputs": ["héllo", "wörld"]}), ("/v1/embeddings", {"input": ["q"] * 5, "encoding_format": "base64"}),
        ("/embed", {"inputs": []}), ("/embed", "{bad json"), ("/embed", {"inputs": [1, 2, 99999]}),
        ("/embed", {"inputs": "x" * 5000, "truncate": True}), ("/nope", {"inputs": "a"}),
    ]
    expected = {200, 400, 404, 422, 429}
    with Server(EMBER, TINY, "--max-concurrent-requests", "16", threads=2) as srv:
        stop = time.time() + 3
        seen, lock = {}, threading.Lock()
        errors = []  # an exception ends only its thread: collected, it fails the test

        def client(k):
            try:
                send_requests(k)
            except Exception as e:  # noqa: BLE001 - a dropped answer, a refused connection, ...
                with lock:
                    errors.append(repr(e))

        def send_requests(k):
            rnd = random.Random(k)
            while time.time() < stop:
                path, body = rnd.choice(bodies)
                data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                s = raw_socket(srv.port)
                mode = rnd.random()
                if mode < 0.15:  # send, then vanish
                    s.sendall(http_head("POST", path, len(data)) + data)
                    key = "vanished"
                elif mode < 0.25:  # hang up mid-body
                    s.sendall(http_head("POST", path, len(data)) + data[:len(data) // 2])
                    key = "half"
                elif mode < 0.3:  # reset
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.sendall(http_head("POST", path, len(data)) + data)
                    key = "reset"
                else:
                    s.sendall(http_head("POST", path, len(data)) + data)
                    key, _ = read_response(s)
                s.close()
                with lock:
                    seen[key] = seen.get(key, 0) + 1

        threads = [threading.Thread(target=client, args=(k,)) for k in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "clients hung"
        assert not errors, f"{len(errors)} clients failed: {errors[:5]}"
        statuses = {k for k in seen if isinstance(k, int)}
        assert statuses <= expected and 200 in statuses, seen
        print(f"  {seen}")
        st, out = srv.post("/embed", {"inputs": "still serving"})
        assert st == 200 and len(out[0]) == 64
        deadline = time.time() + 10
        while True:
            m = srv.metrics()
            if m["ember_requests_in_flight"] == 0 and m["ember_connections"] <= 1 and m["te_queue_size"] == 0:
                break
            assert time.time() < deadline, f"left over: {m['ember_requests_in_flight']} in flight, " \
                                           f"{m['ember_connections']} connections"
            time.sleep(0.1)


def test_keep_alive_and_api_key():
    with Server(EMBER, TINY, "--api-key", "s3cret") as srv:
        c = srv.conn()
        st, _, body = srv.request("POST", "/embed", {"inputs": "a"}, conn=c)
        assert st == 401, body
        c = srv.conn()
        for i in range(5):  # one connection, many requests
            st, _, _ = srv.request("POST", "/embed", {"inputs": f"x{i}"}, headers={"Authorization": "Bearer s3cret"},
                                   conn=c)
            assert st == 200
        st, out = srv.post("/v1/embeddings", {"input": "a"}, headers={"Authorization": "Bearer wrong"})
        assert st == 401 and out["error"]["type"] == "authentication_error"
        # a prefix, the key and more, the key twice, another scheme, nothing after Bearer
        for h in ("Bearer s3cre", "Bearer s3cret!", "Bearer s3crets3cret", "Basic s3cret", "Bearer ", "s3cret"):
            assert srv.post("/embed", {"inputs": "a"}, headers={"Authorization": h})[0] == 401, h
        assert srv.request("GET", "/health")[0] == 200 and srv.request("GET", "/metrics")[0] == 200
        c.close()


def test_stop_and_continue():
    """SIGSTOP then SIGCONT (a shell's ^Z and fg, a debugger) is no signal to stop."""
    with Server(EMBER, TINY) as srv:
        srv.proc.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGCONT)
        deadline = time.time() + 1
        while time.time() < deadline:
            assert srv.proc.poll() is None and "finishing" not in srv.text_log(), srv.text_log()
            assert srv.request("GET", "/health")[0] == 200
            time.sleep(0.05)
        assert srv.post("/embed", {"inputs": "still serving"})[0] == 200


def test_graceful_shutdown():
    srv = Server(EMBER, TINY, *BUSY_ARGS)
    try:
        n = 1000
        threads, out = keep_busy(srv, n=n)
        srv.proc.send_signal(signal.SIGTERM)
        threads[0].join(600)
        code = srv.proc.wait(60)
        log = srv.text_log()
    finally:
        srv.kill()
    assert out[0][0] == 200 and len(out[0][1]) == n, out[0][0]
    assert code == 0, (code, log)
    assert "finishing 1 requests in flight" in log and "stopped" in log, log


# ---- against `ember embed` on a real model ------------------------------------------


def test_same_as_ember_embed():
    model = require_minilm()
    texts = TEXTS + [LONG, "A man is playing a flute.", "Ein Mann spielt Flöte.", "男人在吹长笛。", "   spaced   out  "]
    ref = cli_embed(model, texts)  # ember embed truncates over-long texts
    with Server(EMBER, model) as srv:
        st, out = srv.post("/embed", {"inputs": texts, "truncate": True})
        assert st == 200
        st, oa = srv.post("/v1/embeddings", {"input": texts[:6], "model": "all-MiniLM-L6-v2",
                                             "encoding_format": "base64"})
        assert st == 200
        results = [None] * len(texts)

        def one(i):
            results[i] = srv.post("/embed", {"inputs": texts[i], "truncate": True})

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    worst = 0.0
    for i, r in enumerate(ref):
        assert len(out[i]) == 384
        worst = max(worst, max_diff(out[i], r), max_diff(results[i][1][0], r))
    for d, r in zip(oa["data"], ref):
        worst = max(worst, max_diff(list(struct.unpack("<384f", base64.b64decode(d["embedding"]))), r))
    exact = sum(out[i] == ref[i] for i in range(len(texts)))
    print(f"  max |server - ember embed| = {worst:.3g}; {exact}/{len(texts)} vectors bit-identical")
    assert worst < 2 * TOL, worst


# ---- prompts -----------------------------------------------------------------

PROMPTS = os.path.join(os.path.dirname(TINY), "tiny-st-prompts")
PROMPTS_REF = os.path.join(os.path.dirname(TINY), "tiny-st-prompts-ref")


def ref_rows(model, case):
    """Rows of tests/data/tiny-st-prompts-ref/<model>.<case>.npy (float32, 2-D) as lists."""
    with open(os.path.join(PROMPTS_REF, f"{model}.{case}.npy"), "rb") as f:
        data = f.read()
    hl = struct.unpack("<H", data[8:10])[0]
    hdr = eval(data[10:10 + hl].decode(), {})  # numpy's own header: a dict literal
    assert hdr["descr"] == "<f4" and not hdr["fortran_order"], hdr
    rows, cols = hdr["shape"]
    flat = struct.unpack(f"<{rows * cols}f", data[10 + hl:])
    return [list(flat[i * cols:(i + 1) * cols]) for i in range(rows)]


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b))


def expect_ref(got, model, case, rows):
    ref = ref_rows(model, case)
    for v, i in zip(got, rows):
        c = cosine(v, ref[i])
        assert c >= 0.99999, f"{model} {case} row {i}: cosine {c}"


def test_prompts():
    with open(os.path.join(PROMPTS_REF, "texts.json"), encoding="utf-8") as f:
        texts = json.load(f)["texts"]
    rows = [i for i, t in enumerate(texts) if t]  # the server refuses empty inputs
    inputs = [texts[i] for i in rows]
    body = {"inputs": inputs, "truncate": True}
    with Server(EMBER, PROMPTS, "--auto-truncate") as srv:
        # no prompt_name: the model's default_prompt_name ("query")
        st, out = srv.post("/embed", body)
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "default", rows)
        st, out = srv.post("/embed", {**body, "prompt_name": "passage"})
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "passage", rows)
        st, out = srv.post("/embed", {**body, "prompt_name": "empty"})
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "none", rows)
        # OpenAI's route: prompt_name as an extra body field (the client's extra_body)
        st, out = srv.post("/v1/embeddings", {"input": inputs, "prompt_name": "passage"})
        assert st == 200, out
        expect_ref([d["embedding"] for d in out["data"]], "tiny-st-prompts", "passage", rows)
        msg = expect_error(srv, "/embed", {"inputs": "a", "prompt_name": "quary"}, 422, "validation", "'quary'")
        assert "document, empty, passage, query" in msg, msg
        expect_error(srv, "/v1/embeddings", {"input": "a", "prompt_name": "quary"}, 400, "invalid_request_error",
                     "'quary'")
        expect_error(srv, "/embed", {"inputs": "a", "prompt_name": 3}, 422, "validation", "`prompt_name`")
    with Server(EMBER, PROMPTS, "--default-prompt-name", "passage") as srv:
        st, out = srv.post("/embed", body)
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "passage", rows)
        st, out = srv.post("/embed", {**body, "prompt_name": "query"})
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "query", rows)
    with Server(EMBER, PROMPTS, "--default-prompt", "") as srv:
        st, out = srv.post("/embed", body)
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts", "none", rows)
    # include_prompt false: the prompt's tokens are left out of the mean
    with Server(EMBER, PROMPTS + "-exclude", "--auto-truncate") as srv:
        st, out = srv.post("/embed", {**body, "prompt_name": "query"})
        assert st == 200, out
        expect_ref(out, "tiny-st-prompts-exclude", "query", rows)
        st, out = srv.post("/v1/embeddings", {"input": inputs, "prompt_name": "query"})
        assert st == 200, out
        expect_ref([d["embedding"] for d in out["data"]], "tiny-st-prompts-exclude", "query", rows)
        # token ids are the model's own, taken as they are: no prompt is put before them, none left out
        ids = cli_ids(PROMPTS + "-exclude", texts[0])
        st, plain = srv.post("/embed", {"inputs": [ids], "prompt_name": "empty"})
        st2, prompted = srv.post("/embed", {"inputs": [ids, texts[0]], "prompt_name": "query"})
        assert st == st2 == 200 and max_diff(plain[0], prompted[0]) < TOL, (plain, prompted)
        expect_ref(prompted[1:], "tiny-st-prompts-exclude", "query", [0])
    # a default prompt name the model lacks: the server does not start
    proc = subprocess.run([EMBER, "serve", "--model", PROMPTS, "--port", "0", "--default-prompt-name", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "'nope'" in proc.stderr and "passage" in proc.stderr, proc.stderr


TESTS = [
    test_info_health_metrics,
    test_embed_shapes_and_normalize,
    test_token_id_inputs,
    test_embed_all,
    test_tokenize,
    test_truncation,
    test_similarity,
    test_rerank_and_predict,
    test_openai_shapes,
    test_bad_input,
    test_many_inputs_in_one_request,
    test_overload_429,
    test_concurrent_clients_are_batched,
    test_disconnected_client_is_not_computed,
    test_slow_clients,
    test_abusive_clients,
    test_keep_alive_and_api_key,
    test_stop_and_continue,
    test_graceful_shutdown,
    test_same_as_ember_embed,
    test_prompts,
]

if __name__ == "__main__":
    EMBER = os.path.abspath(sys.argv[1])
    sys.exit(run_tests(TESTS, set(sys.argv[2:])))
