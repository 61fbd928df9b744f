"""Shared fixtures: the models, the ember program (to compare with), the STS-B sentences.

Tests that need the fetched weights (weights/fetch.sh) or the ember program skip
without them, except under EMBER_REQUIRE_WEIGHTS=1 (tools/test.sh, CI), where they fail.
"""
import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ember

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/data/tiny-bert"
MINILM = ROOT / "weights/all-MiniLM-L6-v2"
STSB_EN = ROOT.parent / "shared/data/stsb/stsb-en-test.csv"
REQUIRE = os.environ.get("EMBER_REQUIRE_WEIGHTS") == "1"


def unavailable(why):
    if REQUIRE:
        pytest.fail(f"{why} (EMBER_REQUIRE_WEIGHTS=1)")
    pytest.skip(why)


@pytest.fixture(scope="session")
def ember_bin():
    path = Path(os.environ.get("EMBER_BIN", ROOT / "build/ember"))
    if not os.access(path, os.X_OK):
        unavailable(f"no ember program at {path} (tools/setup.sh builds it; EMBER_BIN names another)")
    return path


@pytest.fixture(scope="session")
def minilm_dir():
    if not (MINILM / "model.safetensors").exists():
        unavailable(f"no weights at {MINILM} (weights/fetch.sh)")
    return MINILM


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    return ember.Model(minilm_dir, device="cpu")


@pytest.fixture(scope="session")
def tiny():
    return ember.Model(TINY, device="cpu")


@pytest.fixture(scope="session")
def stsb_sentences():
    """Every STS-B English test sentence, in tools/make_minilm_refs.py's order."""
    if not STSB_EN.exists():
        unavailable(f"no STS-B data at {STSB_EN}")
    with open(STSB_EN, newline="", encoding="utf-8") as f:
        return [s for r in csv.reader(f) for s in (r[0], r[1])]


def ember_embed(ember_bin, model_dir, texts, tmp_path, *options):
    """`ember embed` on texts (JSONL in, so that any text goes through), as float32 (or
    float16 with --format npy16) rows."""
    src = tmp_path / "ember-embed-in.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    out = tmp_path / "ember-embed-out.npy"
    r = subprocess.run([str(ember_bin), "embed", "-q", "--model", str(model_dir), "--field", "text", str(src),
                        "-o", str(out), *options], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"ember embed failed: {r.stderr}"
    return np.load(out)


def assert_same_vectors(got, want, batch_invariant, what):
    """Identical bits where ember says a text's vector does not depend on its batch;
    else within 1e-5 (the portable CPU kernels may round differently in another batch)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    if batch_invariant:
        bad = np.flatnonzero((got != want).any(axis=1))
        assert bad.size == 0, f"{what}: {bad.size} rows differ in bits (first: row {bad[:5]})"
    else:
        diff = float(np.abs(got.astype(np.float64) - want).max()) if got.size else 0.0
        assert diff <= 1e-5, f"{what}: max |diff| {diff:.3g} > 1e-5"
