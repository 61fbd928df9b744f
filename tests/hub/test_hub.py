"""Models by name: `ember pull` and `--model ID` against a Hugging Face Hub on
loopback (tests/hub/fake_hub.py), and the cache shared with the real
huggingface_hub both ways.

usage: test_hub.py EMBER [test names...]
The interoperability tests need huggingface_hub: they run with the python
named by EMBER_TEST_HF_PYTHON (tests/script_hub.sh sets it up), and are
skipped without it (an error under EMBER_REQUIRE_WEIGHTS=1, as in CI).
"""
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "server"))
from fake_hub import TINY, TOKEN, FakeHub, git_blob_id, sha256  # noqa: E402
from harness import Server, Skip, run_tests  # noqa: E402

EMBER = None
HF_PYTHON = os.environ.get("EMBER_TEST_HF_PYTHON")
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(ROOT, "README.md")
PLAIN_FILES = ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]


class Cache:
    """A fresh HF_HOME, and the environment ember and Python run with."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="ember-hub-test-")
        self.hub_dir = os.path.join(self.home, "hub")

    def env(self, hub=None, **extra):
        e = {k: v for k, v in os.environ.items()
             if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_")) and k != "EMBER_MODEL"}
        e["HF_HOME"] = self.home
        e["HF_ENDPOINT"] = hub.endpoint if hub else "http://127.0.0.1:9"  # a closed port: never the internet
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def repo(self, repo_id):
        return os.path.join(self.hub_dir, "models--" + repo_id.replace("/", "--"))

    def snapshot(self, repo_id, commit):
        return os.path.join(self.repo(repo_id), "snapshots", commit)

    def incomplete(self, repo_id):
        blobs = os.path.join(self.repo(repo_id), "blobs")
        return sorted(f for f in os.listdir(blobs) if f.endswith(".incomplete")) if os.path.isdir(blobs) else []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.home, ignore_errors=True)


def ember(*args, env, timeout=60, ok=True):
    p = subprocess.run([EMBER, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if ok and p.returncode != 0:
        raise AssertionError(f"ember {' '.join(args)} failed ({p.returncode}):\n{p.stderr}")
    if not ok and p.returncode == 0:
        raise AssertionError(f"ember {' '.join(args)} succeeded, expected an error:\n{p.stdout}{p.stderr}")
    return p


def hf_python(script, env, timeout=120):
    """Run `script` with the real huggingface_hub; its stdout parsed as JSON."""
    if not HF_PYTHON:
        if os.environ.get("EMBER_REQUIRE_WEIGHTS") == "1":
            raise AssertionError("huggingface_hub is not available (EMBER_TEST_HF_PYTHON unset) and "
                                 "EMBER_REQUIRE_WEIGHTS=1")
        raise Skip("huggingface_hub is not available (see tests/script_hub.sh)")
    p = subprocess.run([HF_PYTHON, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"huggingface_hub script failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def etag(repo, name):
    data = repo.files[name]
    return sha256(data) if repo.lfs(name) else git_blob_id(data)


def assert_names(msg, repo_id, revision, cache):
    """An error message names the model, the revision and the cache searched."""
    for what in (repo_id, f"revision {revision}", cache.hub_dir):
        assert what in msg, f"the message does not name {what!r}:\n{msg}"


def assert_snapshot(cache, repo, names, revision="main"):
    """Each file is a link to ../blobs/<etag> holding what the hub serves; the ref points at the commit."""
    snap = cache.snapshot(repo.id, repo.commit)
    for name in names:
        path = os.path.join(snap, name)
        assert os.path.islink(path), f"{path} is not a link"
        depth = 2 + name.count("/")
        assert os.readlink(path) == "../" * depth + "blobs/" + etag(repo, name), os.readlink(path)
        with open(path, "rb") as f:
            assert f.read() == repo.files[name], f"{name}: content differs from the hub's"
    if revision is not None:
        with open(os.path.join(cache.repo(repo.id), "refs", revision), "rb") as f:
            assert f.read() == repo.commit.encode(), "refs/ must hold the commit and nothing else"
    assert cache.incomplete(repo.id) == [], cache.incomplete(repo.id)
    return snap


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:6] == b"\x93NUMPY"
    hlen = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + hlen].decode()
    dim = int(header.split("'shape': (")[1].split(")")[0].split(",")[1])
    body = data[10 + hlen:]
    vals = struct.unpack(f"<{len(body) // 4}f", body)
    return [vals[i:i + dim] for i in range(0, len(vals), dim)]


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# ---- tests -------------------------------------------------------------------------------


def test_pull_layout_and_offline_load():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-bert"]
        env = cache.env(hub, HF_TOKEN=TOKEN)
        p = ember("pull", "ember-test/tiny-bert", env=env)
        snap = assert_snapshot(cache, repo, PLAIN_FILES)
        assert p.stdout.strip() == snap, (p.stdout, snap)
        for skipped in ("README.md", "pytorch_model.bin", "onnx/model.onnx"):
            assert not os.path.lexists(os.path.join(snap, skipped)), f"{skipped} was downloaded"
        # the token goes to the hub, never to the CDN it redirects to
        hub_reqs = [r for r in hub.requests if not r["path"].startswith("/cdn/")]
        assert hub_reqs and all(r["auth"] == f"Bearer {TOKEN}" for r in hub_reqs), hub_reqs
        cdn = hub.seen("GET", "/cdn/")
        assert len(cdn) == 1 and cdn[0]["auth"] is None, cdn

        # offline, by id: the same vectors as from the directory, and not one request
        before = len(hub.requests)
        out = tempfile.mkdtemp(prefix="ember-hub-npy-")
        try:
            ember("embed", "--model", "ember-test/tiny-bert", CORPUS, "-o", f"{out}/id.npy",
                  env=cache.env(hub, HF_HUB_OFFLINE=1))
            ember("embed", "--model", TINY, CORPUS, "-o", f"{out}/dir.npy", env=env)
            with open(f"{out}/id.npy", "rb") as a, open(f"{out}/dir.npy", "rb") as b:
                assert a.read() == b.read(), "--model ID and --model DIR embed differently"
        finally:
            shutil.rmtree(out)
        # online but cached: --model reads the cache without asking the hub
        info = ember("info", "--model", "ember-test/tiny-bert", env=env).stdout
        assert "ember-test/tiny-bert" in info, info
        assert len(hub.requests) == before, hub.requests[before:]
        # a second pull asks for the revision, fetches nothing
        ember("pull", "ember-test/tiny-bert", env=env)
        new = hub.requests[before:]
        assert [r["path"] for r in new] == ["/api/models/ember-test/tiny-bert/revision/main"], new


def test_bare_names_and_revisions():
    with FakeHub() as hub, Cache() as cache:
        env = cache.env(hub)
        st = hub.repos["sentence-transformers/tiny-st"]
        # a bare name is sentence-transformers/<name> first
        ember("pull", "tiny-st", "--revision", "v1", env=env)
        assert_snapshot(cache, st, PLAIN_FILES + ["modules.json", "sentence_bert_config.json",
                                                  "config_sentence_transformers.json", "1_Pooling/config.json"],
                        revision="v1")
        assert not os.path.exists(os.path.join(cache.repo(st.id), "refs", "main"))
        assert not os.path.lexists(os.path.join(cache.snapshot(st.id, st.commit), "1_Pooling", "README.md"))
        off = cache.env(hub, HF_HUB_OFFLINE=1)
        assert "sentence-transformers/tiny-st" in ember("info", "--model", "tiny-st", "--revision", "v1",
                                                        env=off).stdout
        p = ember("info", "--model", "tiny-st", env=off, ok=False)  # main was never pulled
        assert_names(p.stderr, "tiny-st", "main", cache)
        assert "refs/main" in p.stderr and "HF_HUB_OFFLINE" in p.stderr, p.stderr
        # then <name> itself, for models without an organisation
        legacy = hub.repos["tiny-legacy"]
        ember("pull", "tiny-legacy", env=env)
        assert_snapshot(cache, legacy, PLAIN_FILES)
        # a commit hash: no ref is written, and it resolves offline by that hash only
        repo = hub.repos["ember-test/tiny-bert"]
        ember("pull", "ember-test/tiny-bert", "--revision", repo.commit, env=env)
        assert_snapshot(cache, repo, PLAIN_FILES, revision=None)
        assert not os.path.exists(os.path.join(cache.repo(repo.id), "refs"))
        ember("info", "--model", "ember-test/tiny-bert", "--revision", repo.commit, env=off)


def test_sharded_weights():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-sharded"]
        env = cache.env(hub)
        shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        ember("pull", "ember-test/tiny-sharded", env=env)
        snap = assert_snapshot(cache, repo, ["model.safetensors.index.json", *shards,
                                             "config.json", "vocab.txt"])
        p = subprocess.run([EMBER, "pull", "ember-test/tiny-sharded"], env=cache.env(hub, HF_HUB_OFFLINE=1),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stdout.strip() == snap, p.stderr
        # a shard gone from the cache: the snapshot is incomplete, and a pull fetches just that one
        os.unlink(os.path.join(cache.repo(repo.id), "blobs", etag(repo, shards[1])))
        p = ember("pull", "ember-test/tiny-sharded", env=cache.env(hub, HF_HUB_OFFLINE=1), ok=False)
        assert_names(p.stderr, "ember-test/tiny-sharded", "main", cache)
        assert f"lacks {shards[1]}" in p.stderr, p.stderr
        before = len(hub.seen("GET", "/cdn/"))
        ember("pull", "ember-test/tiny-sharded", env=env)
        got = hub.seen("GET", "/cdn/")[before:]
        assert [r["path"] for r in got] == [f"/cdn/{sha256(repo.files[shards[1]])}"], got
        assert_snapshot(cache, repo, shards)


def test_resume_after_kill():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-bert"]
        size = len(repo.files["model.safetensors"])
        part = os.path.join(cache.repo(repo.id), "blobs", etag(repo, "model.safetensors") + ".incomplete")
        hub.faults["slow"] = {"model.safetensors": 0.05}  # ~3 s for the file
        proc = subprocess.Popen([EMBER, "pull", "ember-test/tiny-bert"], env=cache.env(hub),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(part) and os.path.getsize(part) >= size // 4, 30, "a partial download")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        have = os.path.getsize(part)
        assert 0 < have < size, have
        # nothing a later run would trust: no blob, no link, no ref
        snap = cache.snapshot(repo.id, repo.commit)
        assert not os.path.lexists(os.path.join(snap, "model.safetensors"))
        assert not os.path.exists(part[: -len(".incomplete")])
        assert not os.path.exists(os.path.join(cache.repo(repo.id), "refs", "main"))
        p = ember("info", "--model", "ember-test/tiny-bert", env=cache.env(hub, HF_HUB_OFFLINE=1), ok=False)
        assert_names(p.stderr, "ember-test/tiny-bert", "main", cache)
        # resumed where it stopped
        hub.faults.clear()
        ember("pull", "ember-test/tiny-bert", env=cache.env(hub))
        last = hub.seen("GET", "/cdn/")[-1]
        assert last["range"] == f"bytes={have}-", last
        assert_snapshot(cache, repo, PLAIN_FILES)


def test_resume_is_checked():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-bert"]
        data = repo.files["model.safetensors"]
        blobs = os.path.join(cache.repo(repo.id), "blobs")
        part = os.path.join(blobs, sha256(data) + ".incomplete")
        os.makedirs(blobs)
        # a partial file that is not a prefix of the content: the sha256 catches it, nothing is kept
        with open(part, "wb") as f:
            f.write(b"\0" * 5000)
        p = ember("pull", "ember-test/tiny-bert", env=cache.env(hub), ok=False)
        assert_names(p.stderr, "ember-test/tiny-bert", "main", cache)
        assert "sha256" in p.stderr and "model.safetensors" in p.stderr, p.stderr
        assert not os.path.exists(part) and not os.path.exists(part[: -len(".incomplete")])
        assert not os.path.lexists(os.path.join(cache.snapshot(repo.id, repo.commit), "model.safetensors"))
        # a server that ignores Range: the whole file again, right
        with open(part, "wb") as f:
            f.write(data[:7000])
        hub.faults["ignore_range"] = True
        ember("pull", "ember-test/tiny-bert", env=cache.env(hub))
        assert hub.seen("GET", "/cdn/")[-1]["range"] == "bytes=7000-"
        assert_snapshot(cache, repo, PLAIN_FILES)


def test_concurrent_pulls():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-bert"]
        hub.faults["slow"] = {"model.safetensors": 0.02}
        procs = [subprocess.Popen([EMBER, "pull", "ember-test/tiny-bert"], env=cache.env(hub),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, err
        assert len({out for out, _ in outs}) == 1, outs
        assert_snapshot(cache, repo, PLAIN_FILES)
        # the lock: each file went over the wire once
        assert len(hub.seen("GET", "/cdn/")) == 1, hub.seen("GET", "/cdn/")
        for name in ("config.json", "vocab.txt"):
            gets = hub.seen("GET", f"/ember-test/tiny-bert/resolve/{repo.commit}/{name}")
            assert len(gets) == 1, (name, gets)


def test_errors_are_clear():
    with FakeHub() as hub, Cache() as cache:
        env = cache.env(hub)
        cases = [
            (["pull", "ember-test/nope"], "ember-test/nope", "main", "no such model"),
            (["pull", "nope"], "nope", "main", "'sentence-transformers/nope' nor 'nope'"),
            (["pull", "ember-test/tiny-bert", "--revision", "nope"], "ember-test/tiny-bert", "nope",
             "revision 'nope' is not on"),
            (["embed", "--model", "ember-test/nope", CORPUS, "-o", os.path.join(cache.home, "x.npy")],
             "ember-test/nope", "main", "cannot load model"),
            (["pull", "ember-test/no-tokenizer"], "ember-test/no-tokenizer", "main",
             "lacks tokenizer.json or vocab.txt"),
        ]
        for args, rid, rev, what in cases:
            p = ember(*args, env=env, ok=False)
            assert_names(p.stderr, rid, rev, cache)
            assert what in p.stderr, (what, p.stderr)
        assert not os.path.exists(cache.repo("ember-test/nope"))
        assert not os.path.exists(os.path.join(cache.repo("ember-test/no-tokenizer"), "refs"))
        # not an id at all
        p = ember("pull", "../etc/passwd", env=env, ok=False)
        assert p.returncode == 2 and "../etc/passwd" in p.stderr and "model id" in p.stderr, p.stderr
        # offline: nothing asked of the hub
        before = len(hub.requests)
        p = ember("pull", "ember-test/tiny-bert", env=cache.env(hub, HF_HUB_OFFLINE=1), ok=False)
        assert_names(p.stderr, "ember-test/tiny-bert", "main", cache)
        assert "HF_HUB_OFFLINE" in p.stderr and "ember pull ember-test/tiny-bert" in p.stderr, p.stderr
        assert len(hub.requests) == before
        # no hub there
        p = ember("pull", "ember-test/tiny-bert", env=cache.env(None), ok=False)
        assert_names(p.stderr, "ember-test/tiny-bert", "main", cache)
        assert "cannot reach http://127.0.0.1:9" in p.stderr, p.stderr


def test_gated_model():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/gated"]
        for token, hint in ((None, "set HF_TOKEN"), ("hf_wrong", "the token (HF_TOKEN, or the one `hf auth login` saved) may not read it")):
            extra = {"HF_TOKEN": token} if token else {}
            p = ember("pull", "ember-test/gated", env=cache.env(hub, **extra), ok=False)
            assert_names(p.stderr, "ember-test/gated", "main", cache)
            assert "HTTP 401" in p.stderr and "gated" in p.stderr and hint in p.stderr, p.stderr
        blobs = os.path.join(cache.repo(repo.id), "blobs")
        assert not os.path.isdir(blobs) or os.listdir(blobs) == []
        # the token from the file `hf auth login` writes
        with open(os.path.join(cache.home, "token"), "w") as f:
            f.write(TOKEN + "\n")
        ember("pull", "ember-test/gated", env=cache.env(hub))
        assert_snapshot(cache, repo, PLAIN_FILES)


def test_broken_downloads_leave_nothing_trusted():
    with FakeHub() as hub, Cache() as cache:
        repo = hub.repos["ember-test/tiny-bert"]
        name = "model.safetensors"
        link = os.path.join(cache.snapshot(repo.id, repo.commit), name)
        blob = os.path.join(cache.repo(repo.id), "blobs", etag(repo, name))
        ref = os.path.join(cache.repo(repo.id), "refs", "main")

        hub.faults = {"truncate": {name}}
        p = ember("pull", repo.id, env=cache.env(hub), ok=False)
        assert_names(p.stderr, repo.id, "main", cache)
        assert f"{name}: download interrupted after" in p.stderr and "resume" in p.stderr, p.stderr
        assert not os.path.lexists(link) and not os.path.exists(blob) and not os.path.exists(ref)
        half = os.path.getsize(blob + ".incomplete")
        assert 0 < half < len(repo.files[name])

        hub.faults = {"bad_sha": {name}}
        p = ember("pull", repo.id, env=cache.env(hub), ok=False)
        assert_names(p.stderr, repo.id, "main", cache)
        assert f"{name}: the download's sha256 is {sha256(repo.files[name])}" in p.stderr, p.stderr
        bad = os.path.join(cache.repo(repo.id), "blobs", sha256(repo.files[name] + b"corrupt"))
        assert not os.path.exists(bad) and not os.path.exists(bad + ".incomplete") and not os.path.lexists(link)

        hub.faults = {"stall": {name}}
        t0 = time.time()
        p = ember("pull", repo.id, env=cache.env(hub, HF_HUB_DOWNLOAD_TIMEOUT=2), ok=False, timeout=40)
        assert time.time() - t0 < 30, "a stalled download must time out"
        assert_names(p.stderr, repo.id, "main", cache)
        assert f"{name}: download interrupted" in p.stderr, p.stderr
        assert not os.path.lexists(link) and not os.path.exists(blob)

        have = os.path.getsize(blob + ".incomplete")  # the stalled run added to the truncated one's part
        assert half < have < len(repo.files[name]), (half, have)
        hub.faults = {}
        ember("pull", repo.id, env=cache.env(hub))
        assert hub.seen("GET", "/cdn/")[-1]["range"] == f"bytes={have}-"
        assert_snapshot(cache, repo, PLAIN_FILES)


HF_READ = r"""
import hashlib, json, os
from huggingface_hub import hf_hub_download, snapshot_download
out = {}
for repo, files in %s:
    snap = snapshot_download(repo)
    got = {}
    for f in files:
        path = hf_hub_download(repo, f)
        assert os.path.dirname(path) == os.path.dirname(os.path.join(snap, f)), (path, snap)
        got[f] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    out[repo] = {"snapshot": snap, "files": got}
print(json.dumps(out))
"""


def test_huggingface_hub_reads_ember_downloads():
    with FakeHub() as hub, Cache() as cache:
        env = cache.env(hub)
        ember("pull", "tiny-st", env=env)
        ember("pull", "ember-test/tiny-sharded", env=env)
        want = {
            "sentence-transformers/tiny-st": PLAIN_FILES + ["modules.json", "1_Pooling/config.json"],
            "ember-test/tiny-sharded": ["model.safetensors.index.json", "model-00001-of-00002.safetensors",
                                        "model-00002-of-00002.safetensors", "vocab.txt"],
        }
        before = len(hub.requests)
        got = hf_python(HF_READ % repr(list(want.items())), cache.env(hub, HF_HUB_OFFLINE=1))
        assert len(hub.requests) == before, "offline huggingface_hub asked the hub"
        for rid, files in want.items():
            repo = hub.repos[rid]
            assert got[rid]["snapshot"] == cache.snapshot(rid, repo.commit), got[rid]
            for f in files:
                assert got[rid]["files"][f] == sha256(repo.files[f]), (rid, f)
        # online, huggingface_hub finds ember's files and downloads only those ember skipped (README.md)
        hf_python(HF_READ % repr(list(want.items())), env)
        new = hub.requests[before:]
        assert any(r["path"].startswith("/api/") for r in new), "huggingface_hub did not go online"
        fetched = [r["path"] for r in new if r["method"] == "GET" and "/resolve/" in r["path"]]
        assert fetched and all(p.endswith("README.md") for p in fetched), fetched
        assert [r for r in new if r["path"].startswith("/cdn/")] == [], "a weights file was downloaded again"


HF_WRITE = r"""
import json
from huggingface_hub import hf_hub_download, snapshot_download
snapshot_download("sentence-transformers/tiny-st")
for f in ("config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"):
    hf_hub_download("ember-test/tiny-bert", f, revision="v1")
print(json.dumps("ok"))
"""


def test_ember_reads_huggingface_hub_downloads():
    with FakeHub() as hub, Cache() as cache:
        hf_python(HF_WRITE, cache.env(hub))
        st = hub.repos["sentence-transformers/tiny-st"]
        # the same model as a plain directory, for reference
        local = os.path.join(cache.home, "local-tiny-st")
        for name, data in st.files.items():
            os.makedirs(os.path.dirname(os.path.join(local, name)), exist_ok=True)
            with open(os.path.join(local, name), "wb") as f:
                f.write(data)
        off = cache.env(hub, HF_HUB_OFFLINE=1)
        ember("embed", "--model", "tiny-st", CORPUS, "-o", f"{cache.home}/id.npy", env=off)
        ember("embed", "--model", local, CORPUS, "-o", f"{cache.home}/dir.npy", env=off)
        a, b = read_npy(f"{cache.home}/id.npy"), read_npy(f"{cache.home}/dir.npy")
        assert a == b and len(a) > 10
        # the sentence-transformers modules were read: mean pooling, then Normalize
        assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in a)
        info = ember("info", "--model", "ember-test/tiny-bert", "--revision", "v1", env=off).stdout
        assert "ember-test/tiny-bert" in info, info
        # online, ember finds huggingface_hub's files and downloads none of them
        before = len(hub.requests)
        ember("pull", "tiny-st", env=cache.env(hub))
        assert [r["path"] for r in hub.requests[before:]] == ["/api/models/sentence-transformers/tiny-st/revision/main"]


def test_serve_model_id():
    with FakeHub() as hub, Cache() as cache:
        ember("pull", "ember-test/tiny-bert", env=cache.env(hub))
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(cache.env(hub, HF_HUB_OFFLINE=1))
        try:
            # TEI's spelling; the later option wins over the harness's --model
            with Server(EMBER, "/nonexistent", "--model-id", "ember-test/tiny-bert") as srv:
                status, _, body = srv.request("GET", "/info")
                assert status == 200 and json.loads(body)["model_id"] == "ember-test/tiny-bert", body
                status, vecs = srv.post("/embed", {"inputs": ["hello world"]})
                assert status == 200 and len(vecs[0]) == 64, vecs
        finally:
            os.environ.clear()
            os.environ.update(saved)


TESTS = [
    test_pull_layout_and_offline_load,
    test_bare_names_and_revisions,
    test_sharded_weights,
    test_resume_after_kill,
    test_resume_is_checked,
    test_concurrent_pulls,
    test_errors_are_clear,
    test_gated_model,
    test_broken_downloads_leave_nothing_trusted,
    test_huggingface_hub_reads_ember_downloads,
    test_ember_reads_huggingface_hub_downloads,
    test_serve_model_id,
]

if __name__ == "__main__":
    EMBER = os.path.abspath(sys.argv[1])
    sys.exit(run_tests(TESTS, set(sys.argv[2:])))
