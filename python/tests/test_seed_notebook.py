"""examples/seed_notebook.py: both halves, and sentence-transformers' scores to 1e-4
(tests/data/minilm/reference.json, written by tools/make_minilm_refs.py)."""
import json
import re
import subprocess
import sys

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
