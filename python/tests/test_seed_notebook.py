"""examples/seed_notebook.py: both halves, and sentence-transformers' scores to 1e-4
(tests/data/minilm/reference.json, written by tools/make_minilm_refs.py)."""
import json
import re
import subprocess
import sys

import numpy as np

from conftest import ROOT


def test_seed_notebook(minilm_dir):
    r = subprocess.run([sys.executable, str(ROOT / "examples/seed_notebook.py"), "--model", str(minilm_dir),
                        "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # first half: the two vectors of "face" differ, and their cosine is printed
    assert "  equal: False" in out
    cos = float(re.search(r"cosine similarity: (-?[0-9.]+)", out).group(1))
    assert -1 <= cos < 0.99
    # second half: every score and the best match of each query
    ref = json.loads((ROOT / "tests/data/minilm/reference.json").read_text())
    docs = ref["seed_corpus"]
    blocks = out.split("query: ")[1:]
    assert [b.splitlines()[0] for b in blocks] == ref["seed_queries"]
    for block, want in zip(blocks, ref["seed_scores"]):
        got = {int(i): float(s) for s, i in re.findall(r"^  (-?[0-9.]+)  \[(\d)\]", block, re.M)}
        assert sorted(got) == [0, 1, 2, 3]
        for i, w in enumerate(want):
            assert abs(got[i] - w) <= 1e-4, f"doc {i}: {got[i]} against sentence-transformers' {w}"
        best = max(range(4), key=lambda i: want[i])
        assert f"best match: {docs[best]}" in block


def test_token_cosine_example(minilm, minilm_dir, ember_bin, tmp_path):
    """The README's `ember embed --tokens` + examples/token_cosine.py, as written there:
    the vectors are the package's token embeddings, and the cosine is the README's."""
    texts = ["did you see the look on her face", "the new clock face on my watch is amazing"]
    (tmp_path / "face.txt").write_text("\n".join(texts) + "\n")
    r = subprocess.run([str(ember_bin), "embed", "--tokens", "--model", str(minilm_dir), "face.txt", "-o", "face.npy"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "2 lines, 21 token vectors (384-dim)" in r.stderr
    rows = np.load(tmp_path / "face.npy")
    want = np.concatenate(minilm.encode(texts, output_value="token_embeddings"))
    np.testing.assert_allclose(rows, want, atol=1e-5)
    r = subprocess.run([sys.executable, str(ROOT / "examples/token_cosine.py"), "face.npy", "face"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    line = "'face' line 1 token 8 vs line 2 token 4: equal False, cosine 0.7584"
    assert line in r.stdout and line in (ROOT / "README.md").read_text(encoding="utf-8")
