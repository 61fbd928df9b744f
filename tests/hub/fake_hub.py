"""A Hugging Face Hub on loopback, for ember's tests (no internet needed).

It serves small models built from tests/data/tiny-bert with the hub's URL
shape and the headers huggingface_hub reads:

  GET  /api/models/{id}/revision/{rev}   {"id", "sha", "siblings": [{"rfilename"}]} (?blobs=true: sizes, lfs)
  GET  /api/models/{id}/tree/{rev}[/{path}]  the file listing huggingface_hub's snapshot_download reads
  HEAD/GET /{id}/resolve/{rev}/{file}    200 with ETag (git blob id) and X-Repo-Commit; for LFS
                                         files (*.safetensors, *.bin, *.onnx) a 302 to /cdn/{sha256}
                                         on another host name (localhost), with X-Linked-Etag
                                         (the sha256) and X-Linked-Size
  GET  /cdn/{sha256}                     the LFS content, honouring "Range: bytes=N-"

Unknown repositories answer 401 (404 with a token) and X-Error-Code RepoNotFound,
unknown revisions 404 RevisionNotFound, a gated repository 401 GatedRepo on its
files without the right token — as the real hub does.

Faults, set in FakeHub.faults (a dict) at any time:
  "truncate":     {file, ...}   the CDN announces the whole size, sends half, closes
  "bad_sha":      {file, ...}   X-Linked-Etag is not the sha256 of what is served
  "slow":         {file: s}     the CDN sends 4 KiB every s seconds
  "stall":        {file, ...}   the CDN sends half, then nothing (until stop())
  "ignore_range": True          the CDN answers 200 with the whole file to a Range request

Standard library only. `python3 fake_hub.py [--repo ID=DIR ...]` serves until Ctrl-C and prints
the endpoint; --repo adds a model directory under an id (a real model, for a check by hand).
"""
import hashlib
import http.server
import json
import os
import struct
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "tests", "data", "tiny-bert")
TOKEN = "hf_ember_test_token"
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def split_safetensors(data):
    """tiny-bert's model.safetensors as two shards and their index."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    names = [k for k in header if k != "__metadata__"]
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    files, weight_map = {}, {}
    for i, part in enumerate(halves):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        h, chunks, off = {"__metadata__": header.get("__metadata__", {})}, [], 0
        for k in part:
            a, b = header[k]["data_offsets"]
            h[k] = dict(header[k], data_offsets=[off, off + b - a])
            chunks.append(body[a:b])
            off += b - a
            weight_map[k] = fname
        hb = json.dumps(h).encode()
        hb += b" " * (-len(hb) % 8)
        files[fname] = struct.pack("<Q", len(hb)) + hb + b"".join(chunks)
    index = {"metadata": {"total_size": sum(len(v) for v in files.values())}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = json.dumps(index, indent=2).encode()
    return files


def tiny_files():
    out = {}
    for name in sorted(os.listdir(TINY)):
        with open(os.path.join(TINY, name), "rb") as f:
            out[name] = f.read()
    return out


def sentence_transformers_files():
    """tiny-bert as a sentence-transformers model: mean pooling, normalised."""
    files = tiny_files()
    files["modules.json"] = json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2).encode()
    files["sentence_bert_config.json"] = b'{"max_seq_length": 32, "do_lower_case": false}'
    files["config_sentence_transformers.json"] = b'{"__version__": {"sentence_transformers": "2.2.2"}}'
    files["1_Pooling/config.json"] = json.dumps({
        "word_embedding_dimension": json.loads(files["config.json"])["hidden_size"],
        "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False}).encode()
    files["1_Pooling/README.md"] = b"not read by ember\n"
    files["README.md"] = b"# tiny-st\n"
    return files


class Repo:
    def __init__(self, repo_id, files, gated=False):
        self.id = repo_id
        self.files = files
        self.gated = gated
        digest = hashlib.sha1(repo_id.encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + hashlib.sha1(files[name]).digest())
        self.commit = digest.hexdigest()
        self.refs = {"main": self.commit, "v1": self.commit}

    def lfs(self, name):
        return name.endswith(LFS_SUFFIXES)


def default_repos():
    tiny = tiny_files()
    plain = dict(tiny)
    plain["README.md"] = b"# tiny-bert\n"
    plain["pytorch_model.bin"] = b"\x80\x02not a model ember reads" * 10
    plain["onnx/model.onnx"] = b"onnx bytes" * 10
    sharded = {k: v for k, v in tiny.items() if k != "model.safetensors"}
    sharded.update(split_safetensors(tiny["model.safetensors"]))
    repos = [
        Repo("ember-test/tiny-bert", plain),
        Repo("sentence-transformers/tiny-st", sentence_transformers_files()),
        Repo("ember-test/tiny-sharded", sharded),
        Repo("ember-test/gated", dict(tiny), gated=True),
        Repo("ember-test/no-tokenizer", {k: v for k, v in tiny.items() if k not in ("vocab.txt",)}),
        Repo("tiny-legacy", dict(tiny)),  # a model without an organisation, as bert-base-uncased was
    ]
    return {r.id: r for r in repos}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    @property
    def hub(self):
        return self.server.hub

    def do_HEAD(self):
        self.route(head=True)

    def do_GET(self):
        self.route(head=False)

    def route(self, head):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.hub.record(self.command, url.path, self.headers.get("Range"), self.headers.get("Authorization"))
        parts = url.path.lstrip("/").split("/")
        try:
            if parts[:2] == ["api", "models"]:
                return self.api(parts[2:], query, head)
            if parts[0] == "cdn" and len(parts) == 2:
                return self.cdn(parts[1], head)
            for n in (1, 2):
                if len(parts) > n + 2 and parts[n] == "resolve":
                    return self.resolve("/".join(parts[:n]), urllib.parse.unquote(parts[n + 1]),
                                        urllib.parse.unquote("/".join(parts[n + 2:])), head)
            self.answer(404, b"no such route")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def error(self, status, code, message, head, extra=None):
        h = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
        h.update(extra or {})
        self.answer(status, json.dumps({"error": message}).encode(), h, head)

    def repo_at(self, repo_id, rev, head):
        """(repo, commit), or None after answering the error."""
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            authed = self.headers.get("Authorization") == f"Bearer {TOKEN}"
            self.error(404 if authed else 401, "RepoNotFound", "Repository Not Found", head)
            return None
        commit = repo.refs.get(rev, rev if rev == repo.commit else None)
        if commit is None:
            self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
            return None
        return repo, commit

    def api(self, parts, query, head):
        for kind in ("revision", "tree"):
            if kind in parts[1:3]:
                k = parts.index(kind, 1)
                repo_id, rev = "/".join(parts[:k]), urllib.parse.unquote(parts[k + 1]) if len(parts) > k + 1 else ""
                sub = urllib.parse.unquote("/".join(parts[k + 2:]))
                break
        else:
            return self.answer(404, b"no such route")
        found = self.repo_at(repo_id, rev, head)
        if not found:
            return
        repo, commit = found
        if kind == "revision":
            blobs = query.get("blobs", ["false"])[0].lower() in ("1", "true")
            siblings = []
            for name, data in sorted(repo.files.items()):
                s = {"rfilename": name}
                if blobs:
                    s.update(size=len(data), blobId=git_blob_id(data))
                    if repo.lfs(name):
                        s["lfs"] = {"sha256": sha256(data), "size": len(data), "pointerSize": 134}
                siblings.append(s)
            body = {"_id": repo.id, "id": repo.id, "modelId": repo.id, "sha": commit, "private": False,
                    "gated": "manual" if repo.gated else False, "disabled": False, "downloads": 0, "likes": 0,
                    "tags": [], "siblings": siblings}
        else:
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            entries, dirs = [], set()
            prefix = sub + "/" if sub else ""
            for name, data in sorted(repo.files.items()):
                if not name.startswith(prefix):
                    continue
                rest = name[len(prefix):]
                segs = rest.split("/")
                for i in range(1, len(segs)):
                    d = prefix + "/".join(segs[:i])
                    if d not in dirs and (recursive or i == 1):
                        dirs.add(d)
                        entries.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
                if len(segs) > 1 and not recursive:
                    continue
                e = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": name}
                if repo.lfs(name):
                    e["lfs"] = {"oid": sha256(data), "size": len(data), "pointerSize": 134}
                entries.append(e)
            body = entries
        self.answer(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head)

    def resolve(self, repo_id, rev, name, head):
        found = self.repo_at(repo_id, rev, head)
        if not found:
            return
        repo, commit = found
        if repo.gated and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.error(401, "GatedRepo", f"Access to model {repo.id} is restricted. You must have access "
                              "to it and be authenticated to access it. Please log in.", head)
        data = repo.files.get(name)
        if data is None:
            return self.error(404, "EntryNotFound", f"{name} does not exist on \"{rev}\"", head,
                              {"X-Repo-Commit": commit})
        common = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if repo.lfs(name):
            sha = sha256(data)
            linked = sha256(data + b"corrupt") if name in self.hub.faults.get("bad_sha", ()) else sha
            location = f"http://{self.hub.cdn_host}:{self.hub.port}/cdn/{sha}"
            return self.answer(302, b"", dict(common, **{
                "Location": location, "X-Linked-Etag": f'"{linked}"', "X-Linked-Size": str(len(data)),
                "ETag": f'"{git_blob_id(b"version https://git-lfs.github.com/spec/v1 " + sha.encode())}"'}), head)
        self.answer(200, data, dict(common, **{"ETag": f'"{git_blob_id(data)}"',
                                               "Content-Type": "application/octet-stream"}), head)

    def cdn(self, sha, head):
        hit = self.hub.blob(sha)
        if hit is None:
            return self.answer(404, b"no such blob")
        name, data = hit
        start, total = 0, len(data)
        rng = self.headers.get("Range")
        faults = self.hub.faults
        if rng and not faults.get("ignore_range"):
            if not rng.startswith("bytes=") or not rng[6:].rstrip("-").isdigit():
                return self.answer(400, b"bad range")
            start = int(rng[6:].rstrip("-"))
            if start >= total:
                return self.answer(416, b"", {"Content-Range": f"bytes */{total}"}, head)
        status = 206 if start else 200
        h = {"Content-Length": str(total - start), "ETag": f'"{sha}"', "Accept-Ranges": "bytes",
             "Content-Type": "application/octet-stream"}
        if status == 206:
            h["Content-Range"] = f"bytes {start}-{total - 1}/{total}"
        self.send_response(status)
        for k, v in h.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        body = data[start:]
        if name in faults.get("truncate", ()) or name in faults.get("stall", ()):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if name in faults.get("stall", ()):
                self.hub.stopping.wait(60)
            self.close_connection = True
            return
        delay = faults.get("slow", {}).get(name)
        if delay:
            for i in range(0, len(body), 4096):
                self.wfile.write(body[i:i + 4096])
                self.wfile.flush()
                time.sleep(delay)
        else:
            self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # a client that hangs up (a cancelled or killed download) is no error of the hub's
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def dir_files(path):
    out = {}
    for dirpath, _, names in os.walk(path):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


class FakeHub:
    def __init__(self, cdn_host="localhost", extra=None):
        self.repos = default_repos()
        for repo_id, path in (extra or {}).items():
            self.repos[repo_id] = Repo(repo_id, dir_files(path))
        self.faults = {}
        self.requests = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.hub = self
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.cdn_host = cdn_host
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def record(self, method, path, rng, auth):
        with self._lock:
            self.requests.append({"method": method, "path": path, "range": rng, "auth": auth})

    def seen(self, method=None, prefix=""):
        with self._lock:
            return [r for r in self.requests if (method is None or r["method"] == method)
                    and r["path"].startswith(prefix)]

    def blob(self, sha):
        for repo in self.repos.values():
            for name, data in repo.files.items():
                if repo.lfs(name) and sha256(data) == sha:
                    return name, data
        return None

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="a Hugging Face Hub on loopback")
    ap.add_argument("--repo", action="append", default=[], metavar="ID=DIR", help="serve DIR as model ID")
    args = ap.parse_args()
    hub = FakeHub(extra=dict(r.split("=", 1) for r in args.repo))
    print(f"HF_ENDPOINT={hub.endpoint}", flush=True)
    for r in hub.repos.values():
        print(f"  {r.id} @ {r.commit}", flush=True)
    try:
        hub.stopping.wait()
    except KeyboardInterrupt:
        hub.stop()
