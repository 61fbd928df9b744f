#!/usr/bin/env python3
"""Soak `ember serve` on loopback: valid load mixed with hostile requests for
a long time, checking that no valid request is lost or answered wrongly, that
resident memory does not grow, and reporting latency.

Each client thread sends, in turn at random, a valid request (90% by default:
/embed with one or several texts, /v1/embeddings as floats or base64), whose
vectors are compared with `ember embed`'s for the same texts, or a hostile one
(10%): a body dribbled slowly, a hang-up mid-body or right after sending, a
reset, an announced body over the limit, bad JSON, two Content-Lengths,
non-string inputs, headers over 32 KiB, an idle connection left open. Each
hostile request has the answer the server documents (or none, for those that
hang up), and anything else is counted as wrong.

VmRSS is read from /proc every second. The baseline is taken once the warm-up
(the first tenth of the run, at most 60 s) is over; the growth reported is
the last reading (after the load stopped and the idle connections closed)
against it. Fails (exit 1) on a valid request lost or wrong, a hostile one
answered other than documented, the server dying, or growth >= --max-growth.

usage: bench/server/soak.py [--ember PATH] [--model DIR] [--duration S] [--clients N]
                            [--hostile FRACTION] [--threads N] [--device D] [--tol T]
Standard library only; the server is started with --idle-timeout 5.
"""
import argparse
import base64
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import http.client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
from harness import Server, http_head, raw_socket, read_response  # noqa: E402

MIB = 1024 * 1024


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load_texts(n):
    csv_path = os.path.join(ROOT, "..", "shared", "data", "stsb", "stsb-en-test.csv")
    texts = []
    if os.path.isfile(csv_path):
        import csv

        with open(csv_path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                texts += [c for c in row if len(c) > 20 and not c.replace(".", "").isdigit()][:2]
                if len(texts) >= n:
                    break
    rnd = random.Random(1)
    words = "the a man woman plays flute guitar dog runs park quickly slowly red blue over under with".split()
    while len(texts) < n:
        texts.append(" ".join(rnd.choice(words) for _ in range(rnd.randint(3, 30))))
    return texts[:n]


def reference(ember, model, device, texts):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
    try:
        out = subprocess.run([ember, "embed", "-m", model, "--device", device, "-q", "--format", "jsonl", f.name],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(f.name)
    vecs = [json.loads(line) for line in out.splitlines()]
    # the routes normalise (the default of /embed and OpenAI's); the model may not
    return [[x / max(sum(y * y for y in v) ** 0.5, 1e-12) for x in v] for v in vecs]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.valid = self.lost = self.wrong = 0
        self.hostile = {}
        self.hostile_wrong = []
        self.worst_diff = 0.0

    def add_hostile(self, kind, ok, detail=""):
        with self.lock:
            self.hostile[kind] = self.hostile.get(kind, 0) + 1
            if not ok:
                self.hostile_wrong.append(f"{kind}: {detail}")


def max_diff(a, b):
    return max(abs(x - y) for x, y in zip(a, b)) if len(a) == len(b) else float("inf")


def valid_request(conn_box, port, rnd, texts, ref, tol, stats):
    idx = [rnd.randrange(len(texts)) for _ in range(rnd.choice([1, 1, 1, 2, 4, 8]))]
    kind = rnd.choice(["embed", "embed", "openai", "openai64"])
    if kind == "embed":
        path, body = "/embed", {"inputs": [texts[i] for i in idx] if len(idx) > 1 else texts[idx[0]],
                                "truncate": True}
    else:
        path, body = "/v1/embeddings", {"input": [texts[i] for i in idx], "model": "m"}
        if kind == "openai64":
            body["encoding_format"] = "base64"
    data = json.dumps(body).encode()
    t0 = time.time()
    try:
        if conn_box[0] is not None and t0 - conn_box[1] > 2.0:
            # the server closes a keep-alive connection idle for --idle-timeout (5 s): like a
            # client's pool, do not reuse one that may be closing as the request goes out
            conn_box[0].close()
            conn_box[0] = None
        if conn_box[0] is None:
            conn_box[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c = conn_box[0]
        c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        out = r.read()
        status = r.status
        conn_box[1] = time.time()
    except Exception as e:  # noqa: BLE001 - a lost request, whatever the cause
        conn_box[0] = None
        with stats.lock:
            stats.valid += 1
            stats.lost += 1
            if stats.lost <= 5:
                print(f"  lost: {path} {e!r}", file=sys.stderr, flush=True)
        return
    dt = time.time() - t0
    diff = float("inf")
    if status == 200:
        got = json.loads(out)
        if kind == "embed":
            vecs = got
        elif kind == "openai":
            vecs = [d["embedding"] for d in got["data"]]
        else:
            vecs = [list(struct.unpack(f"<{len(base64.b64decode(d['embedding'])) // 4}f",
                                       base64.b64decode(d["embedding"]))) for d in got["data"]]
        if len(vecs) == len(idx):
            diff = max(max_diff(v, ref[i]) for v, i in zip(vecs, idx))
    with stats.lock:
        stats.valid += 1
        stats.latencies.append(dt)
        if status != 200 or not diff <= tol:
            stats.wrong += 1
            if stats.wrong <= 5:
                print(f"  wrong: {path} status {status}, max diff {diff:.3g}: {out[:200]!r}", file=sys.stderr,
                      flush=True)
        else:
            stats.worst_diff = max(stats.worst_diff, diff)


def exchange(port, data, timeout=30):
    s = raw_socket(port, timeout=timeout)
    try:
        s.sendall(data)
        return read_response(s)[0]
    except (ConnectionError, socket.timeout, OSError):
        return None
    finally:
        s.close()


def hostile_request(port, rnd, texts, payload_limit, stats):
    body = json.dumps({"inputs": [rnd.choice(texts)]}).encode()
    kind = rnd.choice(["slow", "half", "vanish", "reset", "too_large", "bad_json", "two_lengths",
                       "non_strings", "big_headers", "idle"])
    if kind == "slow":  # the body a piece every 0.1 s: answered in full at its end
        s = raw_socket(port, timeout=60)
        s.sendall(http_head("POST", "/embed", len(body)))
        for i in range(0, len(body), max(1, len(body) // 10)):
            s.sendall(body[i:i + max(1, len(body) // 10)])
            time.sleep(0.1)
        try:
            st = read_response(s)[0]
        except (ConnectionError, socket.timeout, OSError) as e:
            st = repr(e)
        s.close()
        stats.add_hostile(kind, st == 200, st)
    elif kind in ("half", "vanish", "reset"):
        s = raw_socket(port)
        if kind == "reset":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(http_head("POST", "/embed", len(body)) + (body[:len(body) // 2] if kind == "half" else body))
        s.close()
        stats.add_hostile(kind, True)
    elif kind == "too_large":
        s = raw_socket(port, timeout=30)
        s.sendall(http_head("POST", "/embed", payload_limit + 1))
        try:
            st = read_response(s)[0]
        except (ConnectionError, socket.timeout, OSError) as e:
            st = repr(e)
        s.close()
        stats.add_hostile(kind, st == 413, st)
    elif kind == "bad_json":
        st = exchange(port, http_head("POST", "/embed", 9) + b'{"inputs"')
        stats.add_hostile(kind, st == 422, st)
    elif kind == "two_lengths":
        st = exchange(port, http_head("POST", "/embed", len(body), "Content-Length: 3\r\n") + body)
        stats.add_hostile(kind, st == 400, st)
    elif kind == "non_strings":
        b = json.dumps({"inputs": [None, 1.5, {"a": 1}] * 10}).encode()
        st = exchange(port, http_head("POST", "/embed", len(b)) + b)
        stats.add_hostile(kind, st == 422, st)
    elif kind == "big_headers":
        st = exchange(port, http_head("POST", "/embed", len(body), "X-Pad: " + "p" * 40000 + "\r\n") + body)
        stats.add_hostile(kind, st == 431, st)
    else:  # idle: opened and left; the server closes it at --idle-timeout
        s = raw_socket(port, timeout=30)
        t0 = time.time()
        try:
            got = s.recv(10)
        except (ConnectionError, OSError):
            got = b""
        s.close()
        stats.add_hostile(kind, got == b"", f"{got!r} after {time.time() - t0:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ember", default=os.path.join(ROOT, "build", "ember"))
    default_model = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")
    if not os.path.isfile(os.path.join(default_model, "model.safetensors")):
        default_model = os.path.join(ROOT, "tests", "data", "tiny-bert")
    ap.add_argument("--model", default=default_model)
    ap.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--hostile", type=float, default=0.10, help="fraction of hostile requests (default 0.10)")
    ap.add_argument("--threads", type=int, default=0, help="compute threads (default: the server's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--texts", type=int, default=500)
    ap.add_argument("--tol", type=float, default=1e-5, help="largest |server - ember embed| accepted")
    ap.add_argument("--max-growth", type=float, default=0.10, help="VmRSS growth that fails (default 0.10)")
    a = ap.parse_args()

    ember = os.path.abspath(a.ember)
    texts = load_texts(a.texts)
    t0 = time.time()
    ref = reference(ember, a.model, a.device, texts)
    print(f"soak: {len(texts)} texts, reference vectors from `ember embed` in {time.time() - t0:.1f} s", flush=True)
    payload_limit = 2000000
    srv_args = ["--idle-timeout", "5", "--payload-limit", str(payload_limit)]
    import harness

    harness.DEVICE = a.device
    srv = Server(ember, a.model, *srv_args, threads=a.threads or os.cpu_count() or 1)
    stats = Stats()
    stop_at = time.time() + a.duration
    warm_until = time.time() + min(60.0, a.duration / 10)
    samples = []
    baseline = [None]

    def sampler():
        while time.time() < stop_at:
            rss = rss_bytes(srv.proc.pid)
            samples.append((time.time(), rss))
            if baseline[0] is None and time.time() >= warm_until:
                baseline[0] = rss
            time.sleep(1)

    def client(k):
        rnd = random.Random(k)
        conn = [None, 0.0]  # the keep-alive connection, when it was last used
        while time.time() < stop_at:
            if rnd.random() < a.hostile:
                try:
                    hostile_request(srv.port, rnd, texts, payload_limit, stats)
                except Exception as e:  # noqa: BLE001 - counted as a wrong answer
                    stats.add_hostile("error", False, repr(e))
            else:
                valid_request(conn, srv.port, rnd, texts, ref, a.tol, stats)

    print(f"soak: {a.duration:.0f} s, {a.clients} clients, {a.hostile:.0%} hostile, model "
          f"{os.path.basename(a.model)}, {a.device}", flush=True)
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(a.clients)]
    smp = threading.Thread(target=sampler, daemon=True)
    smp.start()
    for t in threads:
        t.start()
    last = time.time()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        if time.time() - last >= 30:
            last = time.time()
            with stats.lock:
                print(f"  {time.time() - (stop_at - a.duration):.0f} s: {stats.valid} valid ({stats.lost} lost, "
                      f"{stats.wrong} wrong), {sum(stats.hostile.values())} hostile, VmRSS "
                      f"{rss_bytes(srv.proc.pid) / MIB:.1f} MiB", flush=True)
        if time.time() > stop_at + 180:
            print("soak: clients still running 180 s after the end", file=sys.stderr)
            break
    smp.join(5)
    # the idle connections close at --idle-timeout; then memory settles
    time.sleep(7)
    alive = srv.proc.poll() is None
    final = rss_bytes(srv.proc.pid) if alive else 0
    m = srv.metrics() if alive else {}
    code = srv.stop() if alive else srv.proc.returncode

    lat = sorted(stats.latencies)

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e3 if lat else float("nan")

    base = baseline[0] or (samples[0][1] if samples else 0)
    peak = max((r for _, r in samples), default=0)
    growth = (final - base) / base if base else float("inf")
    n_host = sum(stats.hostile.values())
    print(f"soak: {stats.valid} valid requests ({stats.valid / a.duration:.1f}/s): {stats.lost} lost, "
          f"{stats.wrong} wrong; max |server - ember embed| {stats.worst_diff:.3g}")
    print(f"soak: latency of valid requests p50 {pct(50):.1f} ms, p90 {pct(90):.1f} ms, p99 {pct(99):.1f} ms, "
          f"max {pct(100):.1f} ms")
    print(f"soak: {n_host} hostile requests ({n_host / max(1, n_host + stats.valid):.1%}): "
          + ", ".join(f"{k} {v}" for k, v in sorted(stats.hostile.items())))
    if stats.hostile_wrong:
        print(f"soak: {len(stats.hostile_wrong)} hostile requests answered other than documented: "
              f"{stats.hostile_wrong[:5]}")
    print(f"soak: VmRSS baseline {base / MIB:.1f} MiB (after {min(60.0, a.duration / 10):.0f} s), peak "
          f"{peak / MIB:.1f} MiB, final {final / MIB:.1f} MiB: growth {growth:+.1%}")
    if m:
        n_req = sum(v for k, v in m.items() if k.startswith("te_request_count"))
        print(f"soak: server counted {n_req:.0f} requests; connections left "
              f"{m.get('ember_connections', 0):.0f}, in flight {m.get('ember_requests_in_flight', 0):.0f}")
    ok = alive and code == 0 and stats.lost == 0 and stats.wrong == 0 and not stats.hostile_wrong \
        and growth < a.max_growth and stats.valid > 0
    print("soak: PASS" if ok else "soak: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
