#!/usr/bin/env python3
"""ember serve under abuse, over real sockets on loopback: slow clients,
thousands of idle connections, oversized and badly framed requests,
pipelining, clients that leave mid-request and mid-response, and `inputs`
at and past every limit.

For each: the documented status and body, the server still answering
correctly, no connection or request left over, and its resident memory
(VmRSS) back near where it was before.

usage: test_abuse.py EMBER_BINARY [TEST_NAME...]
Every socket has a timeout, so a server that stops answering fails a test
instead of hanging it. Standard library only; tests/data/tiny-bert only.
"""
import json
import os
import resource
import socket
import struct
import sys
import threading
import time

from harness import TINY, TOL, Server, Skip, http_head, max_diff, raw_socket, read_response, run_tests

EMBER = None  # set in main
MIB = 1024 * 1024


# ---- what every test checks afterwards -------------------------------------------------


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


class Watched:
    """A tiny-bert server, its reference answer and its baseline memory."""

    def __init__(self, *args, threads=1):
        self.srv = Server(EMBER, TINY, *args, threads=threads)
        self.pid = self.srv.proc.pid
        # the reference vector, and the allocations every request makes once
        st, self.ref = self.srv.post("/embed", {"inputs": ["reference text", "b"]})
        assert st == 200, (st, self.ref)
        for _ in range(20):
            assert self.srv.post("/embed", {"inputs": ["warm up"] * 16})[0] == 200
            assert self.srv.post("/embed_all", {"inputs": ["warm up the hidden states"] * 16})[0] == 200
        self.base = rss_bytes(self.pid)
        self.peak = self.base

    def sample(self):
        self.peak = max(self.peak, rss_bytes(self.pid))

    def check(self, what, timeout=20):
        """Still alive, answering correctly, with nothing left over, memory back
        within 20% + 16 MiB of the baseline."""
        assert self.srv.proc.poll() is None, f"{what}: the server died ({self.srv.proc.returncode})\n" + \
            self.srv.text_log()[-2000:]
        st, out = self.srv.post("/embed", {"inputs": ["reference text", "b"]})
        assert st == 200 and max_diff(out[0], self.ref[0]) < TOL and max_diff(out[1], self.ref[1]) < TOL, \
            f"{what}: a valid request was answered {st}"
        limit = self.base * 1.2 + 16 * MIB
        deadline = time.time() + timeout
        while True:
            m = self.srv.metrics()
            rss = rss_bytes(self.pid)
            self.peak = max(self.peak, rss)
            left = m["ember_requests_in_flight"] != 0 or m["ember_connections"] > 1 or m["te_queue_size"] != 0
            if not left and rss <= limit:
                break
            assert time.time() < deadline, (
                f"{what}: left over after {timeout} s: {m['ember_requests_in_flight']:.0f} in flight, "
                f"{m['ember_connections']:.0f} connections, VmRSS {rss / MIB:.1f} MiB "
                f"(baseline {self.base / MIB:.1f}, limit {limit / MIB:.1f})")
            time.sleep(0.1)
        print(f"  {what}: VmRSS baseline {self.base / MIB:.1f} MiB, peak {self.peak / MIB:.1f}, "
              f"after {rss / MIB:.1f}", flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.srv.__exit__(*exc)


def exchange(port, data, timeout=10):
    """Send data, read until the server closes (or timeout): the bytes, and
    whether it closed."""
    s = raw_socket(port, timeout=timeout)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    out, closed = b"", False
    try:
        while True:
            c = s.recv(65536)
            if not c:
                closed = True
                break
            out += c
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    return out, closed


def parse_responses(data):
    """Every complete HTTP response in data: [(status, headers, body)]."""
    out = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), v.strip())
        n = int(hdrs.get("content-length", "0"))
        if len(rest) < n:
            break
        out.append((int(lines[0].split()[1]), hdrs, rest[:n]))
        data = rest[n:]
    return out


def tei_error(body, error_type="validation", contains=None):
    e = json.loads(body)
    assert set(e) == {"error", "error_type"} and e["error_type"] == error_type, e
    if contains:
        assert contains in e["error"], f"{e['error']!r} lacks {contains!r}"
    return e["error"]


def post_bytes(path, body, extra=""):
    return http_head("POST", path, len(body), extra) + body


# ---- slow clients ------------------------------------------------------------------------


def test_slow_clients_hold_nothing():
    """Clients dribbling their headers or their body a byte a second hold
    neither a worker nor a place among --max-concurrent-requests: others are
    answered meanwhile, and the slow ones at their end."""
    with Watched("--max-concurrent-requests", "2", "--tokenization-workers", "1", "--idle-timeout", "10") as w:
        srv = w.srv
        body = json.dumps({"inputs": ["reference text", "b"]}).encode()
        req = post_bytes("/embed", body)
        head_len = len(http_head("POST", "/embed", len(body)))
        slow = [raw_socket(srv.port, timeout=30) for _ in range(8)]
        # half cut in the headers, half in the body; 8 bytes each, one a second
        cuts = [head_len // 2 if i % 2 == 0 else head_len + len(body) // 2 for i in range(len(slow))]
        for s, cut in zip(slow, cuts):
            s.sendall(req[:cut - 8])
        fast_done, slow_sent = [], []

        def dribble():
            for k in range(8, 0, -1):
                for s, cut in zip(slow, cuts):
                    s.sendall(req[cut - k:cut - k + 1])
                time.sleep(1)
            slow_sent.append(time.time())

        t = threading.Thread(target=dribble)
        t.start()
        time.sleep(0.5)
        for i in range(6):  # 8 slow clients > 2 places: a place held would answer 429
            st, out = srv.post("/embed", {"inputs": ["reference text", "b"]}, timeout=10)
            assert st == 200 and max_diff(out[0], w.ref[0]) < TOL, (i, st, out)
            fast_done.append(time.time())
        t.join(30)
        assert slow_sent and fast_done[-1] < slow_sent[0], "the fast clients waited for the slow ones"
        for s, cut in zip(slow, cuts):
            s.sendall(req[cut:])
            st, data = read_response(s)
            assert st == 200 and max_diff(json.loads(data)[0], w.ref[0]) < TOL, (st, data[:100])
            s.close()
        w.check("slow clients")


# ---- idle connections --------------------------------------------------------------------


def test_5000_idle_connections():
    """5,000 connections held open, some with half a request line, do not lock
    out the others; closed, they leave nothing behind."""
    n = 5000
    need = n + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            raise Skip(f"the descriptor limit is {hard} (ulimit -Hn); {need} are needed for {n} connections")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))  # the server inherits it, and raises its own
    with Watched("--idle-timeout", "120") as w:
        srv = w.srv
        socks = []
        try:
            for i in range(n):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
                if i % 10 == 0:
                    s.sendall(b"GET /hea")
                socks.append(s)
            deadline = time.time() + 30
            while srv.metrics()["ember_connections"] < n:
                assert time.time() < deadline, f"only {srv.metrics()['ember_connections']:.0f} connections accepted"
                time.sleep(0.1)
            for i in range(10):
                st, out = srv.post("/embed", {"inputs": ["reference text", "b"]}, timeout=30)
                assert st == 200 and max_diff(out[1], w.ref[1]) < TOL, (i, st)
            assert srv.request("GET", "/health")[0] == 200
            # the held connections are still served when they speak
            for s in socks[:50:10]:
                s.sendall(b"lth HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(s)[0] == 200
            w.sample()
            print(f"  {n} idle connections: VmRSS {rss_bytes(w.pid) / MIB:.1f} MiB", flush=True)
        finally:
            for s in socks:
                s.close()
        w.check(f"{n} idle connections")


# ---- oversized and badly framed requests ------------------------------------------------------


def test_oversized_requests():
    limit = 100000
    with Watched("--payload-limit", str(limit), "--idle-timeout", "3") as w:
        port = w.srv.port
        body = b'{"inputs": "a"}'
        # headers over libmicrohttpd's 32 KiB per connection: 431; a URL: 414; closed
        out, closed = exchange(port, b"POST /embed HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 431 ") and closed, out[:100]
        out, closed = exchange(port, b"POST /embed HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n")
        assert out.startswith(b"HTTP/1.1 431 ") and closed, out[:100]
        out, closed = exchange(port, b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 414 ") and closed, out[:100]
        # a body announced over the limit: 413 before a byte of it is sent, then closed
        for path, openai in (("/embed", False), ("/v1/embeddings", True)):
            s = raw_socket(port, timeout=10)
            s.sendall(http_head("POST", path, 100 * MIB))
            st, data = read_response(s)
            assert st == 413, (st, data)
            if openai:
                assert json.loads(data)["error"]["code"] == "payload_too_large", data
            else:
                tei_error(data, "validation", "payload limit")
            assert s.recv(100) == b"", "the connection stayed open after a 413"
            s.close()
        # at the limit: read; one byte past: refused
        at = b'{"inputs": "reference text"}'
        at += b" " * (limit - len(at))
        st, _, data = w.srv.request("POST", "/embed", at)
        assert st == 200 and max_diff(json.loads(data)[0], w.ref[0]) < TOL, (st, data[:100])
        st, _, data = w.srv.request("POST", "/embed", at + b" ")
        assert st == 413, st
        # chunked: read as it comes; a little over the limit: 413 at its end
        def chunked(path, payload, piece=30000, end=True):
            out = http_head("POST", path, extra="Transfer-Encoding: chunked\r\n")
            for i in range(0, len(payload), piece):
                out += b"%x;ext=1\r\n" % len(payload[i:i + piece]) + payload[i:i + piece] + b"\r\n"
            return out + (b"0\r\n\r\n" if end else b"")

        rs = parse_responses(exchange(port, chunked("/embed", at, piece=7) + b"", timeout=3)[0])
        assert [r[0] for r in rs] == [200] and max_diff(json.loads(rs[0][2])[0], w.ref[0]) < TOL, rs
        out, closed = exchange(port, chunked("/embed", at + b" " * 5000))
        rs = parse_responses(out)
        assert [r[0] for r in rs] == [413] and closed, out[:200]
        tei_error(rs[0][2], "validation", "payload limit")
        # ... and an endless one is cut off after four more limits' worth, unanswered
        s = raw_socket(port, timeout=10)
        s.sendall(http_head("POST", "/embed", extra="Transfer-Encoding: chunked\r\n"))
        piece = b"%x\r\n" % 10000 + b"x" * 10000 + b"\r\n"
        sent = 0
        try:
            while sent < 200 * limit:
                s.sendall(piece)
                sent += 10000
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 200 * limit, "an endless chunked body was read on and on"
        s.close()
        # a malformed chunk size: 400
        out, closed = exchange(port, http_head("POST", "/embed", extra="Transfer-Encoding: chunked\r\n") +
                               b"zz\r\n" + body + b"\r\n0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 400 ") and closed, out[:100]
        w.check("oversized requests")


def test_content_length_framing():
    with Watched("--idle-timeout", "3") as w:
        port = w.srv.port
        body = json.dumps({"inputs": ["reference text", "b"]}).encode()
        # missing: an empty body, which is not JSON
        rs = parse_responses(exchange(port, http_head("POST", "/embed"), timeout=2)[0])
        assert [r[0] for r in rs] == [422], rs
        tei_error(rs[0][2], "validation", "JSON")
        # not a number, negative: 400, closed
        for v in (b"abc", b"-5", b"1e3", b"12 34"):
            out, closed = exchange(port, b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: " + v + b"\r\n\r\n" + body)
            assert out.startswith(b"HTTP/1.1 400 ") and closed, (v, out[:100])
        # past 64 bits: too large (libmicrohttpd's own 413), closed
        out, closed = exchange(port, http_head("POST", "/embed", "99999999999999999999999") + body)
        assert out.startswith(b"HTTP/1.1 413 ") and closed, out[:100]
        # repeated, the same or not, or beside Transfer-Encoding: 400 in TEI's shape, closed
        for extra in (f"Content-Length: {len(body)}\r\n", "Content-Length: 3\r\n", "Transfer-Encoding: chunked\r\n"):
            out, closed = exchange(port, http_head("POST", "/embed", len(body), extra) + body)
            rs = parse_responses(out)
            assert [r[0] for r in rs] == [400] and closed, (extra, out[:200])
            tei_error(rs[0][2], "validation", "Content-Length")
        # shorter than the body: the cut body is not JSON (422); the rest is no request, and the
        # connection is closed at --idle-timeout
        for tail in (b"", b"\r\n\r\n"):
            out, closed = exchange(port, http_head("POST", "/embed", len(body) - 5) + body + tail)
            rs = parse_responses(out)
            assert [r[0] for r in rs] == [422] and closed, out[:300]
        # longer than what comes: waited for until --idle-timeout, then closed unanswered
        t0 = time.time()
        out, closed = exchange(port, http_head("POST", "/embed", len(body) + 100) + body, timeout=15)
        assert out == b"" and closed and time.time() - t0 < 14, (out[:100], closed)
        w.check("Content-Length framing")


def test_pipelined_requests():
    """Requests sent back to back on one connection are answered in order,
    each as it would be alone, an error in the middle included."""
    with Watched() as w:
        items = [
            ("GET", "/health", None, 200),
            ("POST", "/embed", {"inputs": ["reference text", "b"]}, 200),
            ("POST", "/v1/embeddings", {"input": "b"}, 200),
            ("POST", "/embed", {"inputs": []}, 400),
            ("GET", "/info", None, 200),
            ("POST", "/embed", "{not json", 422),
            ("POST", "/tokenize", {"inputs": "b"}, 200),
            ("POST", "/embed", {"inputs": "reference text"}, 200),
        ] * 4
        data = b""
        for method, path, body, _ in items:
            if body is None:
                data += http_head(method, path)
            else:
                b = (body if isinstance(body, str) else json.dumps(body)).encode()
                data += post_bytes(path, b)
        s = raw_socket(w.srv.port, timeout=30)
        s.sendall(data)
        buf, got = b"", []
        while len(got) < len(items):  # answers may share a read: parsed from one buffer
            c = s.recv(65536)
            assert c, f"closed after {len(parse_responses(buf))} of {len(items)} answers"
            buf += c
            got = [(st, body) for st, _, body in parse_responses(buf)]
        s.close()
        assert [g[0] for g in got] == [it[3] for it in items], [g[0] for g in got]
        for (method, path, body, _), (st, out) in zip(items, got):
            if path == "/embed" and st == 200:
                vecs = json.loads(out)
                assert max_diff(vecs[0], w.ref[0]) < TOL, path
            elif path == "/v1/embeddings":
                assert max_diff(json.loads(out)["data"][0]["embedding"], w.ref[1]) < TOL
            elif path == "/tokenize":
                assert json.loads(out)[0][1]["text"] == "b"
        w.check("pipelined requests")


# ---- clients that leave ---------------------------------------------------------------------------


def test_disconnects_mid_request_and_mid_response():
    with Watched("--max-client-batch-size", "64", "--idle-timeout", "3", threads=1) as w:
        port = w.srv.port
        big = json.dumps({"inputs": [f"{i} " + "a long text to fill the hidden states " * 6 for i in range(64)],
                          "truncate": True}).encode()
        req = post_bytes("/embed_all", big)  # answered with ~3 MB of JSON
        head_len = len(http_head("POST", "/embed_all", len(big)))
        for k in range(60):
            s = raw_socket(port)
            if k % 3 == 0:  # in the headers
                s.sendall(req[:head_len // 2])
            elif k % 3 == 1:  # in the body
                s.sendall(req[:head_len + len(big) // 2])
            else:  # after the body, with a reset
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.sendall(req)
            s.close()
        w.check("disconnects mid-request")
        # mid-response: a few bytes of a 3 MB answer read, then a close or a reset
        for k in range(30):
            s = raw_socket(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(req)
            got = b""
            while len(got) < 12:
                c = s.recv(100)
                assert c, f"closed before the answer ({k})"
                got += c
            assert got.startswith(b"HTTP/1.1 200"), (k, got)
            if k % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            w.sample()
        # a client that asks and never reads holds no one else up, and is closed at --idle-timeout
        stuck = raw_socket(port)
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(req)
        time.sleep(0.5)
        for i in range(5):
            st, out = w.srv.post("/embed", {"inputs": ["reference text", "b"]}, timeout=10)
            assert st == 200 and max_diff(out[0], w.ref[0]) < TOL
        t0 = time.time()
        w.check("disconnects mid-response and a client that never reads")
        assert time.time() - t0 < 15, "the client that never reads was not closed"
        stuck.close()


# ---- inputs at and past every limit -------------------------------------------------------------


def test_inputs_at_and_past_limits():
    with Watched("--max-client-batch-size", "16", "--payload-limit", "20000000") as w:
        srv = w.srv

        def expect(path, body, status, contains=None):
            st, _, data = srv.request("POST", path, body if isinstance(body, (bytes, str)) else json.dumps(body).encode())
            assert st == status, (path, str(body)[:80], st, data[:200])
            if status != 200:
                msg = json.loads(data)["error"]
                msg = msg["message"] if isinstance(msg, dict) else msg
                if contains:
                    assert contains in msg, f"{msg!r} lacks {contains!r}"
            return json.loads(data)

        # --max-client-batch-size: at it, and one past, on every route
        assert len(expect("/embed", {"inputs": ["a"] * 16}, 200)) == 16
        expect("/embed", {"inputs": ["a"] * 17}, 422, "batch size 17 > maximum allowed batch size 16")
        expect("/embed_all", {"inputs": ["a"] * 17}, 422, "batch size")
        expect("/tokenize", {"inputs": ["a"] * 17}, 422, "batch size")
        expect("/v1/embeddings", {"input": ["a"] * 17}, 400, "batch size")
        # the model's 64 tokens: at it, and one past, as text and as ids
        ids = [t["id"] for t in expect("/tokenize", {"inputs": "a " * 62}, 200)[0]]
        assert len(ids) == 64, len(ids)
        assert len(expect("/embed", {"inputs": "a " * 62}, 200)) == 1
        expect("/embed", {"inputs": "a " * 63}, 422, "must have less than 64 tokens. Given: 65")
        assert len(expect("/embed", {"inputs": ids}, 200)) == 1
        expect("/embed", {"inputs": ids[:-1] + [ids[1], ids[-1]]}, 422, "less than 64")
        expect("/v1/embeddings", {"input": "a " * 63}, 400, "64 tokens")
        # a million tiny strings: refused from their count, and memory given back
        million = json.dumps({"inputs": ["a"] * 1000000}).encode()
        for path in ("/embed", "/v1/embeddings", "/tokenize"):
            data = million.replace(b'"inputs"', b'"input"') if "v1" in path else million
            st, _, data = srv.request("POST", path, data)
            assert st in (400, 422) and b"batch size 1000000" in data, (path, st, data[:200])
            w.sample()
        w.check("a million tiny strings")
        # deep nesting: past jansson's depth limit, inside `inputs`, in an ignored field
        expect("/embed", "[" * 100000 + "]" * 100000, 422, "JSON")
        expect("/embed", '{"inputs": ' + "[" * 100000 + "]" * 100000 + "}", 422, "JSON")
        expect("/embed", '{"inputs": ' + '{"a":' * 100000 + "1" + "}" * 100001, 422, "JSON")
        expect("/embed", '{"inputs": "a", "x": ' + "[" * 1000 + "]" * 1000 + "}", 200)
        expect("/embed", {"inputs": [[[["a"]]]]}, 422, "integer")
        # items that are not strings (nor token ids)
        for i, bad in enumerate([None, True, {"a": "b"}, 1e308, -1]):
            expect("/embed", {"inputs": ["a", bad]}, 422, "`inputs[1]`")
            expect("/v1/embeddings", {"input": ["a", bad]}, 400, "`input[1]`")
        expect("/embed", {"inputs": [1, 2, None]}, 422, "`inputs[0]`")  # not all ids: a list of inputs
        w.check("nested and non-string inputs")
    # with the default payload limit a million strings are 413 from their Content-Length
    with Watched() as w:
        s = raw_socket(w.srv.port)
        s.sendall(http_head("POST", "/embed", len(million)))
        st, data = read_response(s)
        assert st == 413, st
        tei_error(data, "validation", "payload limit of 2000000")
        s.close()
        w.check("a million tiny strings, default limits")


TESTS = [
    test_slow_clients_hold_nothing,
    test_5000_idle_connections,
    test_oversized_requests,
    test_content_length_framing,
    test_pipelined_requests,
    test_disconnects_mid_request_and_mid_response,
    test_inputs_at_and_past_limits,
]

if __name__ == "__main__":
    EMBER = os.path.abspath(sys.argv[1])
    sys.exit(run_tests(TESTS, set(sys.argv[2:])))
