"""Start `ember serve` on a free loopback port and talk to it over real sockets.

Standard library only, so that the protocol tests run wherever python3 does.
"""
import atexit
import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "tests", "data", "tiny-bert")
MINILM = os.environ.get("EMBER_TEST_MINILM") or os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")
# EMBER_TEST_DEVICE=cuda runs every server (and `ember embed`) on the GPU;
# EMBER_TEST_TOL is then the agreement asked of two batches' results.
DEVICE = os.environ.get("EMBER_TEST_DEVICE", "cpu")
TOL = float(os.environ.get("EMBER_TEST_TOL", "1e-6"))


class Skip(Exception):
    pass


def require_minilm():
    """Skip without the fetched model, or fail when CI says it must be there."""
    if os.path.isfile(os.path.join(MINILM, "model.safetensors")):
        return MINILM
    if os.environ.get("EMBER_REQUIRE_WEIGHTS") == "1":
        raise AssertionError(f"{MINILM} is missing and EMBER_REQUIRE_WEIGHTS=1 (run weights/fetch.sh)")
    raise Skip(f"{MINILM} is missing (run weights/fetch.sh)")


_running = []


@atexit.register
def _kill_leftovers():
    """No server outlives the tests, whatever failed."""
    for srv in _running:
        srv.kill()


class Server:
    """An `ember serve` process on 127.0.0.1 and an ephemeral port."""

    def __init__(self, ember, model=TINY, *args, threads=1, ready_timeout=120):
        # One compute thread by default: tests run beside others on a small
        # machine, where OpenMP's barriers stall when the cores are oversubscribed.
        self.log = tempfile.NamedTemporaryFile(prefix="ember-serve-", suffix=".log", delete=False)
        self.cmd = [ember, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0", "--threads", str(threads),
                    "--device", DEVICE, *args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self.log)
        _running.append(self)
        self.port = None
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.text_log())
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"server did not start: {' '.join(self.cmd)}\n{self.text_log()}")

    def text_log(self):
        with open(self.log.name, "r", errors="replace") as f:
            return f.read()

    def conn(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None, timeout=60):
        """(status, headers dict with lower-case names, body bytes)."""
        c = conn or self.conn(timeout)
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if conn is None:
            c.close()
        return r.status, hdrs, data

    def post(self, path, obj, **kw):
        """(status, parsed JSON body)."""
        status, _, data = self.request("POST", path, obj, **kw)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            raise AssertionError(f"POST {path}: answer is not JSON: {data[:200]!r}")

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        assert status == 200, status
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Signal the server and return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"server did not stop within {timeout} s after signal {sig}")
        self.cleanup()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.cleanup()

    def cleanup(self):
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.kill()
        elif self.proc.poll() is None:
            code = self.stop()
            assert code == 0, f"server exited with {code}"


BUSY_ARGS = ("--max-batch-tokens", "64", "--max-client-batch-size", "2000", "--payload-limit", "4000000")


def keep_busy(srv, count=1, n=1000, path="/embed"):
    """Start `count` requests of n inputs that each fill a batch (on a tiny-bert
    server started with BUSY_ARGS) and return once all are admitted and
    queued: the model is then busy for n * count forward passes. Returns the
    threads and a list their (status, body) land in."""
    import threading

    texts = [f"{i} " + "the end of a very long text " * 12 for i in range(n)]
    key = "input" if "embeddings" in path else "inputs"
    out = []

    def post():
        out.append(srv.post(path, {key: texts, "truncate": True}, timeout=600))

    threads = [threading.Thread(target=post) for _ in range(count)]
    for t in threads:
        t.start()
    deadline = time.time() + 60
    while True:
        m = srv.metrics()
        if m["ember_requests_in_flight"] >= count and m["te_queue_size"] > 0:
            return threads, out
        if time.time() > deadline or not all(t.is_alive() for t in threads):
            raise AssertionError(f"the busy requests did not queue: {out}")
        time.sleep(0.002)


def raw_socket(port, timeout=30):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def http_head(method, path, length=None, extra=""):
    h = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    if length is not None:
        h += f"Content-Length: {length}\r\n"
    return (h + extra + "\r\n").encode()


def read_response(sock):
    """Read one HTTP/1.1 response with a Content-Length: (status, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before the headers ({buf[:100]!r})")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed in the body")
        rest += chunk
    return status, rest[:length]


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def max_diff(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b)) if a else 0.0


def normalized(v):
    n = max(norm(v), 1e-12)
    return [x / n for x in v]


def run_tests(tests, names=None):
    """Run test functions in order; print one line each and the summary."""
    passed = failed = skipped = 0
    for t in tests:
        if names and t.__name__ not in names:
            continue
        t0 = time.time()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.time() - t0:.1f} s)", flush=True)
        except Skip as e:
            skipped += 1
            print(f"SKIP {t.__name__}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next test runs
            failed += 1
            import traceback

            print(f"FAIL {t.__name__} ({time.time() - t0:.1f} s): {e!r}", flush=True)
            traceback.print_exc(file=sys.stdout)
    print(f"{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 1 if failed else 0
