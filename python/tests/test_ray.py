"""ember on Ray Data: the Embedder class on every batch format, and `python -m
ember.ray_embed` on a real local Ray cluster (2 CPUs, a small object store), its output
checked row by row against `ember embed`."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import REQUIRE, TINY, assert_same_vectors, ember_embed

if REQUIRE:
    import pyarrow  # noqa: F401  (CI installs them: missing is a failure there)
    import ray  # noqa: F401
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ray = pytest.importorskip("ray")

from ember.ray import Embedder  # noqa: E402

OBJECT_STORE = 300 * 1024 * 1024  # bytes; this machine has 24 GiB and other work
WORDS = ("the quick brown fox jumps over lazy dog a man is playing guitar woman slicing tomato "
         "cat sits on mat two people walk in park near river bank money children school").split()


def make_texts(n, seed):
    """n texts of 1-30 words; row 5 empty, rows 11, 4242 and n-1 null, one with a newline
    and non-ASCII, one long enough to be truncated (the tiny model keeps 64 tokens)."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 31))) for _ in range(n)]
    texts[5] = ""
    texts[7] = "line one\nline two: café, naïve, 東京 🙂"
    texts[9] = " ".join(WORDS * 6)
    for i in (11, 4242, n - 1):
        if i < n:
            texts[i] = None
    return texts


def run_cli(args, timeout=600, env=None):
    """python -m ember.ray_embed in its own session (on a timeout the whole group, Ray's
    processes included, is stopped); (exit status, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "ember.ray_embed", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGINT)
        try:
            out, _ = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
        pytest.fail(f"ray_embed ran past {timeout} s:\n{out[-3000:]}")
    return p.returncode, out


def env_without_cluster():
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    return env


def matrix(column):
    """A fixed-size-list column as (rows, size) float32, null rows included (as stored)."""
    c = column.combine_chunks()
    size = c.type.list_size
    return np.asarray(c.values).reshape(-1, size)[c.offset:c.offset + len(c)]


def check_output(table, ids, texts, tiny, ember_bin, tmp_path):
    """Every id exactly once, the input's columns kept, null texts null, every other
    vector `ember embed`'s for the same text."""
    got_ids = table.column("id").to_pylist()
    assert len(got_ids) == len(ids) and len(set(got_ids)) == len(got_ids), "an id is missing or repeated"
    assert set(got_ids) == set(ids)
    emb_type = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(emb_type) and emb_type.list_size == 64
    assert emb_type.value_type == pa.float32()
    by_id = dict(zip(ids, texts))
    assert table.column("text").to_pylist() == [by_id[i] for i in got_ids]
    emb = table.column("embedding")
    null = np.array(emb.is_null().to_pylist())
    want_null = np.array([by_id[i] is None for i in got_ids])
    assert null.sum() >= 1 and np.array_equal(null, want_null)
    rows = np.flatnonzero(~null)
    vectors = matrix(emb)[rows]
    want = ember_embed(ember_bin, TINY, [by_id[got_ids[r]] for r in rows], tmp_path)
    assert_same_vectors(vectors, want, tiny.info["batch_invariant"], "ray_embed against ember embed")
    assert any(by_id[got_ids[r]] == "" for r in rows), "the empty text was not embedded"


# ---- the class alone, on each batch format ----------------------------------------------


def test_embedder_batch_formats(tiny):
    import pandas as pd
    texts = make_texts(50, 1)
    ids = list(range(100, 150))
    e = Embedder(TINY, id_column="id", threads=1)
    present = [t for t in texts if t is not None]
    want = tiny.encode(present, batch_size=len(present))
    mask = np.array([t is None for t in texts])

    out = e(pa.table({"id": ids, "text": texts}))
    assert out.column_names == ["id", "text", "embedding"] and out.num_rows == 50
    assert out.column("embedding").is_null().to_pylist() == mask.tolist()
    arr = matrix(out.column("embedding"))
    assert np.array_equal(arr[~mask], want)

    out = e({"id": np.array(ids), "text": np.array(texts, dtype=object)})
    assert set(out) == {"id", "text", "embedding"} and out["embedding"].shape == (50, 64)
    assert np.isnan(out["embedding"][mask]).all() and np.array_equal(out["embedding"][~mask], want)

    out = e(pd.DataFrame({"id": ids, "text": texts}))
    assert list(out.columns) == ["id", "text", "embedding"]
    assert [v is None for v in out["embedding"]] == mask.tolist()
    assert np.array_equal(np.stack([v for v in out["embedding"] if v is not None]), want)

    assert np.array_equal(e.embed(np.array(present, dtype=object)), want)  # Spark's predict function


def test_embedder_errors():
    e = Embedder(TINY, id_column="id", null_text="error", threads=1)
    with pytest.raises(ValueError, match=r"row 1 of the batch \(id 8\) has a null 'text'"):
        e(pa.table({"id": [7, 8], "text": ["a", None]}))
    with pytest.raises(KeyError, match="no column 'text'"):
        e(pa.table({"body": ["a"]}))
    with pytest.raises(ValueError, match="already has a column 'embedding'"):
        e(pa.table({"text": ["a"], "embedding": [1]}))
    with pytest.raises(TypeError, match="column 'text' is int64, not a string column"):
        e(pa.table({"text": [1, 2]}))
    with pytest.raises(TypeError, match=r"row 1 of the batch \(id 2\): column 'text' holds int"):
        e({"id": np.array([1, 2]), "text": np.array(["a", 5], dtype=object)})
    with pytest.raises(TypeError, match="a batch must be"):
        e([("a",)])
    with pytest.raises(ValueError, match="null_text must be"):
        Embedder(TINY, null_text="skip")


# ---- the program on a real local cluster ------------------------------------------------


def test_ray_embed_20000_rows_on_a_local_cluster(tiny, ember_bin, tmp_path):
    n = 20_000
    texts = make_texts(n, 2)
    ids = [int(x) for x in np.random.default_rng(3).permutation(n) * 3 + 1000]  # not the row numbers
    src = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": ids, "text": texts, "source": ["s%d" % (i % 7) for i in range(n)]}), src,
                   row_group_size=6000)
    out = tmp_path / "embedded"
    rc, log = run_cli([src, out, "--model", TINY, "--text-column", "text", "--id-column", "id", "--actors", 2,
                       "--num-cpus", 2, "--object-store-memory", OBJECT_STORE, "--batch-size", 1000],
                      env=env_without_cluster())
    assert rc == 0, log[-4000:]
    assert "started a local cluster: 2 CPUs" in log and "2 actors on cpu" in log, log[-4000:]
    assert f"{n} rows to" in log
    table = pq.read_table(out)
    assert table.column_names == ["id", "text", "source", "embedding"]
    check_output(table, ids, texts, tiny, ember_bin, tmp_path)


@pytest.fixture(scope="module")
def cluster():
    """A real local Ray cluster in this process, which the programs started below join."""
    ray.init(num_cpus=2, object_store_memory=OBJECT_STORE, include_dashboard=False)
    yield
    ray.shutdown()


def test_a_null_text_stops_the_job_naming_the_row(cluster):
    from ray.data import ActorPoolStrategy
    texts = make_texts(30, 4)
    ds = ray.data.from_arrow(pa.table({"id": list(range(500, 530)), "text": texts}))
    ds = ds.map_batches(Embedder, fn_constructor_kwargs={"model_dir": str(TINY), "id_column": "id",
                                                         "null_text": "error", "threads": 1},
                        batch_format="numpy", batch_size=30, compute=ActorPoolStrategy(size=1), num_cpus=0.5)
    with pytest.raises(Exception, match=r"\(id 511\) has a null 'text'"):
        ds.take_all()


def test_ray_embed_jsonl_joins_the_running_cluster(cluster, tiny, ember_bin, tmp_path):
    texts = make_texts(600, 5)
    ids = list(range(600))
    src = tmp_path / "corpus.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i, t in zip(ids, texts):
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    out = tmp_path / "embedded"
    out.mkdir()  # an empty folder is fine
    rc, log = run_cli([src, out, "--model", TINY, "--id-column", "id", "--batch-size", 100],
                      env=env_without_cluster())
    assert rc == 0, log[-4000:]
    assert "joined the running cluster" in log, log[-4000:]
    check_output(pq.read_table(out), ids, texts, tiny, ember_bin, tmp_path)
    # a second run refuses to add to the first's output
    rc, log = run_cli([src, out, "--model", TINY], env=env_without_cluster())
    assert rc == 1 and "is not empty (--overwrite empties it)" in log


def test_ray_embed_refuses_bad_input_before_starting_ray(tmp_path):
    src = tmp_path / "c.parquet"
    pq.write_table(pa.table({"id": [1], "body": ["x"]}), src)
    rc, log = run_cli([src, tmp_path / "o", "--model", TINY, "--text-column", "text"])
    assert rc == 1 and "has no column 'text' (--text-column; columns: id, body)" in log
    rc, log = run_cli([tmp_path / "missing.parquet", tmp_path / "o", "--model", TINY])
    assert rc == 1 and "no such file or folder" in log
    rc, log = run_cli([src, tmp_path / "o", "--model", tmp_path / "no-model"])
    assert rc == 1 and "model directory not found" in log
    rc, log = run_cli([src, tmp_path / "o", "--model", TINY, "--actors", "0"])
    assert rc == 2 and "--actors must be >= 1" in log
