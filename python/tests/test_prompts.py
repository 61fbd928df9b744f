"""Prompts: encode(prompt_name=, prompt=) as sentence-transformers has them, on the two
tiny models of tools/make_tiny_st_prompts.py against sentence-transformers' own vectors
(tests/data/tiny-st-prompts-ref), include_prompt false among them, and the errors."""
import json

import numpy as np
import pytest

import ember
from conftest import ROOT

DATA = ROOT / "tests/data"
REF = DATA / "tiny-st-prompts-ref"
TEXTS = json.loads((REF / "texts.json").read_text(encoding="utf-8"))["texts"]
CUSTOM = "Represent this sentence for searching relevant passages: "


def close(got, model, case):
    ref = np.load(REF / f"{model}.{case}.npy")
    cos = (got * ref).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.99999, (model, case, cos)


@pytest.mark.parametrize("model", ["tiny-st-prompts", "tiny-st-prompts-exclude"])
def test_prompts_match_sentence_transformers(model):
    m = ember.Model(str(DATA / model), device="cpu", threads=1)
    close(m.encode(TEXTS), model, "default")
    close(m.encode(TEXTS, prompt_name="query"), model, "query")
    close(m.encode(TEXTS, prompt_name="passage", batch_size=2), model, "passage")
    close(m.encode(TEXTS, prompt=CUSTOM), model, "custom")
    close(m.encode(TEXTS, prompt=CUSTOM, prompt_name="query"), model, "custom")  # prompt wins
    close(m.encode(TEXTS, prompt=""), model, "none")
    close(m.encode(TEXTS, prompt_name="passage", precision="float16").astype(np.float32), model, "passage")
    one = m.encode(TEXTS[0], prompt_name="query")
    assert one.shape == (64,)
    ref = np.load(REF / f"{model}.query.npy")[0]
    assert float(one @ ref / (np.linalg.norm(one) * np.linalg.norm(ref))) >= 0.99999


def test_prompts_and_default_are_shown():
    m = ember.Model(str(DATA / "tiny-st-prompts"), device="cpu", threads=1)
    assert m.prompts == {"document": "", "empty": "", "passage": "passage: ", "query": "query: "}
    assert m.default_prompt_name == "query"
    assert m.info["include_prompt"] is True
    x = ember.Model(str(DATA / "tiny-st-prompts-exclude"), device="cpu", threads=1)
    assert x.default_prompt_name is None and x.info["include_prompt"] is False
    plain = ember.Model(str(DATA / "tiny-bert"), device="cpu", threads=1)
    assert plain.prompts == {} and plain.default_prompt_name is None


def test_prompt_errors():
    m = ember.Model(str(DATA / "tiny-st-prompts"), device="cpu", threads=1)
    with pytest.raises(ValueError, match=r"unknown prompt name 'quary'.*document, empty, passage, query"):
        m.encode(["a"], prompt_name="quary")
    with pytest.raises(ValueError, match="'quary'"):
        m.encode([], prompt_name="quary")  # no texts: still checked
    with pytest.raises(TypeError, match="prompt_name must be a str"):
        m.encode(["a"], prompt_name=3)
    with pytest.raises(ValueError, match="token_embeddings"):
        m.encode(["a"], prompt_name="query", output_value="token_embeddings")


def test_ray_and_spark_embedder_take_the_prompt():
    from ember.ray import Embedder
    e = Embedder(str(DATA / "tiny-st-prompts-exclude"), prompt_name="passage", threads=1)
    close(np.asarray(e.embed(np.array(TEXTS, dtype=object))), "tiny-st-prompts-exclude", "passage")
    with pytest.raises(ValueError, match="'quary'"):
        Embedder(str(DATA / "tiny-st-prompts"), prompt_name="quary", threads=1)
