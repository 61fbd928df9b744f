"""Model.encode and Model.tokenize: shapes and dtypes as sentence-transformers gives them,
the same vectors as `ember embed`, and sentence-transformers' vectors for all-MiniLM-L6-v2."""
import json
import threading
import time

import numpy as np
import pytest

import ember

from conftest import ROOT, assert_same_vectors, ember_embed

TEXTS = ["did you see the look on her face", "", "Hello, wörld! 🙂 naïve café", "a\nline\tbreak",
         "the quick brown fox " * 80,  # over 256 tokens: truncated
         "東京は日本の首都です", "x"]


# ---- shapes and dtypes ------------------------------------------------------------------


def test_shapes_and_dtypes(minilm):
    one = minilm.encode("hello world")
    assert one.shape == (384,) and one.dtype == np.float32
    many = minilm.encode(["hello world", "hi there", ""])
    assert many.shape == (3, 384) and many.dtype == np.float32
    assert_same_vectors(many[:1], one[None], minilm.info["batch_invariant"], "a text alone and in a batch")
    empty = minilm.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32
    assert minilm.encode([], precision="float16").shape == (0, 384)
    assert minilm.encode([], output_value="token_embeddings") == []
    assert minilm.dim == minilm.get_sentence_embedding_dimension() == 384
    assert minilm.max_seq_length == 256 and minilm.device == "cpu"
    assert minilm.info["pooling"] == "mean" and minilm.info["normalize"] is True


def test_any_sequence_of_str(minilm):
    want = minilm.encode(["a b", "c d"])
    assert np.array_equal(minilm.encode(("a b", "c d")), want)
    assert np.array_equal(minilm.encode(t for t in ["a b", "c d"]), want)
    assert np.array_equal(minilm.encode(np.array(["a b", "c d"])), want)


def test_token_embeddings(minilm):
    texts = ["did you see the look on her face", "", "x y z"]
    toks = minilm.encode(texts, output_value="token_embeddings", batch_size=2)
    assert isinstance(toks, list) and len(toks) == 3
    for t, e in zip(texts, toks):
        assert e.dtype == np.float32 and e.shape == (len(minilm.tokenize(t)["ids"]), 384)
    assert toks[1].shape == (2, 384)  # [CLS] [SEP]
    # mean pooling of the tokens, normalised, is the sentence embedding
    pooled = minilm.encode(texts, batch_size=2)
    for e, p in zip(toks, pooled):
        m = e.mean(axis=0)
        assert np.abs(m / np.linalg.norm(m) - p).max() < 1e-5
    single = minilm.encode("x y z", output_value="token_embeddings")
    assert single.shape == (5, 384) and np.array_equal(single, toks[2])
    half = minilm.encode(texts, output_value="token_embeddings", precision="float16", batch_size=2)
    assert all(h.dtype == np.float16 and np.array_equal(h, e.astype(np.float16)) for h, e in zip(half, toks))


def test_contextual_vectors_differ(minilm):
    a, b = minilm.encode(["did you see the look on her face", "the new clock face on my watch is amazing"],
                         output_value="token_embeddings")
    ta, tb = minilm.tokenize("did you see the look on her face"), minilm.tokenize("the new clock face on my watch")
    fa, fb = a[ta["tokens"].index("face")], b[tb["tokens"].index("face")]
    assert not np.array_equal(fa, fb)
    assert 0 < float(ember.util.cos_sim(fa, fb)[0, 0]) < 0.99


def test_float16(minilm):
    texts = TEXTS * 3
    full = minilm.encode(texts, batch_size=4)
    half = minilm.encode(texts, batch_size=4, precision="float16")
    assert half.dtype == np.float16 and half.shape == full.shape
    assert np.array_equal(half, full.astype(np.float16))
    assert minilm.encode("x", precision="float16").shape == (384,)


def test_normalize_and_pooling(minilm):
    texts = ["one sentence", "another, longer sentence with more words"]
    default = minilm.encode(texts)
    assert np.allclose(np.linalg.norm(default, axis=1), 1, atol=1e-6)
    assert np.array_equal(minilm.encode(texts, normalize_embeddings=True), default)
    raw = minilm.encode(texts, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1, atol=1e-3)
    assert np.abs(raw / np.linalg.norm(raw, axis=1, keepdims=True) - default).max() < 1e-6
    cls = minilm.encode(texts, pooling="cls", normalize_embeddings=False)
    toks = minilm.encode(texts, output_value="token_embeddings")
    assert np.array_equal(cls, np.stack([t[0] for t in toks]))


def test_batch_size_does_not_change_the_vectors_beyond_rounding(minilm):
    texts = TEXTS * 2
    a, b = minilm.encode(texts, batch_size=1), minilm.encode(texts, batch_size=64)
    assert_same_vectors(a, b, minilm.info["batch_invariant"], "batch 1 against batch 64")


def test_convert_to_numpy_false_gives_rows(minilm):
    rows = minilm.encode(["a", "b"], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 2 and rows[0].shape == (384,)


# ---- the same as ember embed ------------------------------------------------------------


def test_encode_equals_ember_embed_bit_for_bit(minilm, minilm_dir, ember_bin, stsb_sentences, tmp_path):
    """One text per forward pass on both sides: the same batches, so identical bits on
    any processor; then each side's own batching, identical where ember reports batch
    invariance (else within 1e-5, the portable kernels' rounding)."""
    texts = TEXTS + stsb_sentences[:150]
    want = ember_embed(ember_bin, minilm_dir, texts, tmp_path, "--batch", "1")
    got = minilm.encode(texts, batch_size=1)
    bad = np.flatnonzero((got != want).any(axis=1))
    assert bad.size == 0, f"{bad.size} of {len(texts)} rows differ in bits from ember embed (first: {bad[:5]})"
    want_b = ember_embed(ember_bin, minilm_dir, texts, tmp_path)
    assert_same_vectors(minilm.encode(texts, batch_size=32), want_b, minilm.info["batch_invariant"],
                        "encode against ember embed, each batching its own way")


def test_options_equal_ember_embed(minilm, minilm_dir, ember_bin, tmp_path):
    texts = TEXTS[:4]
    want = ember_embed(ember_bin, minilm_dir, texts, tmp_path, "--batch", "1", "--pooling", "cls", "--no-normalize")
    got = minilm.encode(texts, batch_size=1, pooling="cls", normalize_embeddings=False)
    assert np.array_equal(got, want)
    want16 = ember_embed(ember_bin, minilm_dir, texts, tmp_path, "--batch", "1", "--format", "npy16")
    got16 = minilm.encode(texts, batch_size=1, precision="float16")
    assert want16.dtype == np.float16 and np.array_equal(got16, want16)


def test_tiny_model_equals_ember_embed(tiny, ember_bin, tmp_path):
    texts = [f"the quick brown fox {i} jumps" for i in range(40)] + [""]
    want = ember_embed(ember_bin, ROOT / "tests/data/tiny-bert", texts, tmp_path, "--batch", "1")
    assert np.array_equal(tiny.encode(texts, batch_size=1), want)


# ---- sentence-transformers' vectors ----------------------------------------------------


def test_cosine_to_sentence_transformers(minilm, stsb_sentences):
    """Every STS-B English test sentence against sentence-transformers' own vectors
    (tests/data/minilm/stsb-en.f16.npy, written by tools/make_minilm_refs.py)."""
    ref = np.load(ROOT / "tests/data/minilm/stsb-en.f16.npy").astype(np.float32)
    assert ref.shape == (len(stsb_sentences), 384)
    got = minilm.encode(stsb_sentences, batch_size=64)
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(cos.argmin())
    assert cos.min() >= 0.99999, f"sentence {worst} {stsb_sentences[worst]!r}: cosine {cos.min():.7f}"


# ---- tokenize -----------------------------------------------------------------------------


def test_tokenize(minilm):
    t = minilm.tokenize("Hello, wörld!")
    assert t["tokens"] == ["[CLS]", "hello", ",", "world", "!", "[SEP]"]
    assert t["ids"][0] == 101 and t["ids"][-1] == 102 and len(t["ids"]) == 6
    text = "Hello, wörld!".encode()
    assert [text[s:e].decode() for s, e in t["offsets"][1:-1]] == ["Hello", ",", "wörld", "!"]
    assert t["offsets"][0] == (0, 0) and t["type_ids"] == [0] * 6 and t["truncated"] is False
    many = minilm.tokenize(["a", "b c"])
    assert [m["tokens"] for m in many] == [["[CLS]", "a", "[SEP]"], ["[CLS]", "b", "c", "[SEP]"]]
    long = minilm.tokenize("word " * 400)
    assert len(long["ids"]) == 256 and long["truncated"] is True
    assert len(minilm.tokenize("word " * 400, truncate=False)["ids"]) == 402
    assert minilm.tokenize("a b", add_special_tokens=False)["tokens"] == ["a", "b"]
    assert len(minilm.tokenize("word " * 40, max_length=10)["ids"]) == 10


# ---- the GIL, the progress bar, Ctrl-C --------------------------------------------------


def test_the_gil_is_released_while_encoding(minilm, stsb_sentences):
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    texts = stsb_sentences[:256]
    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    start_ticks = ticks
    t0 = time.monotonic()
    minilm.encode(texts, batch_size=256)  # one call into the library
    took = time.monotonic() - t0
    done.set()
    t.join()
    # with the GIL held the other thread could not tick at all during the call
    assert took > 0.05 and ticks - start_ticks >= 10, (took, ticks - start_ticks)


def test_progress_bar(minilm, capfd):
    minilm.encode(["a", "b", "c", "d"], batch_size=1, show_progress_bar=True)
    err = capfd.readouterr().err
    assert "Batches" in err and "4/4" in err
    minilm.encode(["a", "b"], batch_size=1, show_progress_bar=False)
    assert capfd.readouterr().err == ""


def test_ctrl_c_stops_a_long_encode(tmp_path):
    import signal
    import subprocess
    import sys
    script = tmp_path / "long.py"
    script.write_text(
        "import sys, ember\n"
        f"m = ember.Model({str(ROOT / 'tests/data/tiny-bert')!r}, device='cpu', threads=1)\n"
        "texts = ['the quick brown fox jumps over the lazy dog ' * 6] * 2_000_000\n"
        "print('started', flush=True)\n"
        "m.encode(texts, batch_size=64)\n"
        "print('finished', flush=True)\n")
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    time.sleep(1.0)
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert time.monotonic() - t0 < 10, "the encode went on after Ctrl-C"
    assert "KeyboardInterrupt" in err and "finished" not in out
    assert p.returncode != 0


def test_similarity(minilm):
    e = minilm.encode(["a cat", "a dog", "a car"])
    s = minilm.similarity(e, e)
    assert s.shape == (3, 3) and np.allclose(np.diag(s), 1, atol=1e-6)


def test_dense_modules_like_sentence_transformers():
    """A model with Dense modules (tools/make_tiny_st_dense.py): sentence-transformers' own vectors."""
    ref_dir = ROOT / "tests/data/tiny-st-dense-ref"
    texts = json.loads((ref_dir / "texts.json").read_text(encoding="utf-8"))["texts"]
    m = ember.Model(str(ROOT / "tests/data/tiny-st-dense"), device="cpu")
    assert m.dim == 32 and m.get_sentence_embedding_dimension() == 32
    assert m.info["hidden_size"] == 64
    assert m.info["modules"] == "Pooling(mean) Dense(64->48, Tanh) Dense(48->32, Identity, no bias) Normalize"
    got = m.encode(texts)
    want = np.load(ref_dir / "embeddings.npy")
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert got.shape == want.shape and cos.min() >= 0.99999
    raw = m.encode(texts, normalize_embeddings=False)
    np.testing.assert_allclose(raw, np.load(ref_dir / "unnormalized.npy"), atol=1e-5)
    tokens = m.encode(texts[0], output_value="token_embeddings")
    assert tokens.shape[1] == 64  # token vectors stay the encoder's width
