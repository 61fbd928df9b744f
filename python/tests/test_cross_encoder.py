"""Cross-encoders from Python: Model.predict and Model.rank on the tiny random
BertForSequenceClassification models (tools/make_tiny_cross_encoder.py) against
transformers' logits and sentence-transformers CrossEncoder's scores."""
import json

import numpy as np
import pytest

import ember

from conftest import ROOT

CE = ROOT / "tests/data/tiny-cross-encoder"
CE3 = ROOT / "tests/data/tiny-cross-encoder-3"
REF = ROOT / "tests/data/tiny-cross-encoder-ref"
PAIRS = json.loads((REF / "pairs.json").read_text())


def test_predict_as_crossencoder():
    m = ember.Model(CE, device="cpu")
    assert m.num_labels == 1 and m.info["labels"] == ["LABEL_0"]
    scores = m.predict(PAIRS, batch_size=3)
    assert scores.shape == (len(PAIRS),) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.load(REF / "scores1.npy")[:, 0], atol=2e-5)
    np.testing.assert_allclose(m.predict(PAIRS, raw_scores=True), np.load(REF / "logits1.npy")[:, 0], atol=2e-5)
    one = m.predict(PAIRS[0])
    assert np.ndim(one) == 0 and abs(one - scores[0]) < 1e-6


def test_rank():
    m = ember.Model(CE, device="cpu")
    q = PAIRS[0][0]
    docs = [p[1] for p in PAIRS[:2]]
    ranked = m.rank(q, docs, return_documents=True)
    want = np.load(REF / "scores1.npy")[:2, 0]
    assert [r["corpus_id"] for r in ranked] == list(np.argsort(-want))
    assert all(abs(r["score"] - want[r["corpus_id"]]) < 2e-5 and r["text"] == docs[r["corpus_id"]] for r in ranked)
    assert len(m.rank(q, docs, top_k=1)) == 1 and "text" not in m.rank(q, docs, top_k=1)[0]


def test_three_labels_and_single_texts():
    m = ember.Model(CE3, device="cpu")
    assert m.info["labels"] == ["contradiction", "entailment", "neutral"]
    np.testing.assert_allclose(m.predict(PAIRS), np.load(REF / "logits3.npy"), atol=2e-5)
    np.testing.assert_allclose(m.predict([p[0] for p in PAIRS]), np.load(REF / "single3.npy"), atol=2e-5)
    with pytest.raises(ValueError, match="one label"):
        m.rank("q", ["a"])


def test_an_encoder_is_refused():
    m = ember.Model(ROOT / "tests/data/tiny-bert", device="cpu")
    assert m.num_labels == 0
    with pytest.raises(ValueError, match="not a cross-encoder"):
        m.predict([["a", "b"]])
