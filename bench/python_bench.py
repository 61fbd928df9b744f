#!/usr/bin/env python3
"""The Python package against `ember embed` and sentence-transformers, and the Ray job
against `ember embed`, in one run, on the mixed workload (bench/workloads.py).
Run through bench/python_bench, which makes the environments this needs.

Every engine is a process of its own, timed whole by this one (start, imports, model
load, embedding, writing the vectors), and also as it times itself (the embedding
alone); the engines take turns, the order rotating every round, and the report is
the median of the rounds:

  ember embed   the program on the corpus as a text file, to .npy
  python        ember.Model(...).encode(texts, batch_size=B), then np.save
  st            sentence-transformers' SentenceTransformer(...).encode(texts, batch_size=B)
                on PyTorch CPU (the peers' venv, bench/requirements.txt)
  ray           python -m ember.ray_embed on the corpus as Parquet (ids and texts), on
                a local Ray cluster started by the job (--actors, one thread each),
                against ember embed on the same corpus

The binding's overhead is python's whole process over ember embed's; the Ray job's
rows/s is taken over the job (as ray_embed reports it: reading, embedding and writing,
the cluster's start excluded) and over its whole process.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PY_ENCODE = r"""
import json, sys, time
t0 = time.monotonic()
import numpy as np
import ember
model_dir, corpus, out, threads, batch = sys.argv[1:6]
texts = open(corpus, encoding="utf-8").read().split("\n")[:-1]
m = ember.Model(model_dir, device="cpu", threads=int(threads))
t1 = time.monotonic()
v = m.encode(texts, batch_size=int(batch))
t2 = time.monotonic()
np.save(out, v)
print(json.dumps({"load": t1 - t0, "encode": t2 - t1, "rows": len(texts), "version": ember.__version__}))
"""

ST_ENCODE = r"""
import json, os, sys, time
t0 = time.monotonic()
model_dir, corpus, out, threads, batch = sys.argv[1:6]
os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false",
                  HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
import numpy as np
import torch
from sentence_transformers import SentenceTransformer
torch.set_num_threads(int(threads))
torch.set_num_interop_threads(1)
texts = open(corpus, encoding="utf-8").read().split("\n")[:-1]
m = SentenceTransformer(model_dir, device="cpu")
t1 = time.monotonic()
v = m.encode(texts, batch_size=int(batch), convert_to_numpy=True)
t2 = time.monotonic()
np.save(out, v)
import sentence_transformers
print(json.dumps({"load": t1 - t0, "encode": t2 - t1, "rows": len(texts),
                  "version": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}"}))
"""


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", default=os.environ.get("EMBER_BIN", os.path.join(ROOT, "build/ember")))
    ap.add_argument("--model", default=os.path.join(ROOT, "weights/all-MiniLM-L6-v2"))
    ap.add_argument("--st-python", required=True, help="the peers' venv python (sentence-transformers)")
    ap.add_argument("--workloads-dir", default=os.path.join(HERE, "out/workloads"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3, help="rounds of ember embed / python / st")
    ap.add_argument("--ray-rounds", type=int, default=2, help="rounds of ember embed / ray")
    ap.add_argument("--repeat", type=int, default=5, help="the mixed workload this many times over (encode)")
    ap.add_argument("--ray-repeat", type=int, default=10, help="... and for the Ray job")
    ap.add_argument("--batch", type=int, default=32, help="texts per encode call (python, st)")
    ap.add_argument("--actors", type=int, default=None, help="Ray actors (default: --threads, one thread each)")
    ap.add_argument("--object-store-memory", type=int, default=512 * 1024 * 1024)
    ap.add_argument("--engines", default="ember,python,st,ray")
    ap.add_argument("--out", default=os.path.join(HERE, "out/python-bench"))
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--no-append", action="store_true")
    a = ap.parse_args()
    a.actors = a.actors or a.threads
    return a


ARGS = parse_args()


def log(msg):
    print(f"[python_bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, env=None):
    """(wall seconds of the whole process, stdout, stderr)."""
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{shlex.join(map(str, cmd))} failed ({r.returncode}): {r.stderr[-3000:]}")
    return wall, r.stdout, r.stderr


def ember_embed(corpus, out):
    wall, _, err = run([ARGS.ember, "embed", "--no-progress", "-m", ARGS.model, "--threads", str(ARGS.threads),
                        corpus, "-o", out])
    m = re.search(r"(\d+) rows \((\d+) tokens\) in ([0-9.]+) s", err)
    return {"wall": wall, "encode": float(m.group(3)), "rows": int(m.group(1)), "tokens": int(m.group(2))}


def py_encode(corpus, out):
    wall, so, _ = run([sys.executable, "-c", PY_ENCODE, ARGS.model, corpus, out, str(ARGS.threads), str(ARGS.batch)])
    return dict(json.loads(so.strip().splitlines()[-1]), wall=wall)


def st_encode(corpus, out):
    wall, so, _ = run([ARGS.st_python, "-c", ST_ENCODE, ARGS.model, corpus, out, str(ARGS.threads),
                       str(ARGS.batch)])
    return dict(json.loads(so.strip().splitlines()[-1]), wall=wall)


def ray_job(parquet, out):
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    wall, so, err = run([sys.executable, "-m", "ember.ray_embed", parquet, out, "--model", ARGS.model,
                         "--text-column", "text", "--id-column", "id", "--actors", str(ARGS.actors),
                         "--num-cpus", str(ARGS.threads), "--object-store-memory", str(ARGS.object_store_memory),
                         "--overwrite"], env=env)
    text = so + err
    m = re.search(r"(\d+) rows to .* in ([0-9.]+) s \(([0-9.]+) rows/s; ([0-9.]+) s with the cluster's start\)",
                  text)
    if not m or "started a local cluster" not in text:
        raise RuntimeError(f"ray_embed did not report a local run: {text[-2000:]}")
    return {"wall": wall, "encode": float(m.group(2)), "rows": int(m.group(1)), "with_start": float(m.group(4))}


def rounds(engines, n):
    """{name: [result, ...]}: every engine n times, taking turns, the order rotating."""
    res = {name: [] for name, _ in engines}
    for r in range(n):
        k = r % len(engines)
        for name, fn in engines[k:] + engines[:k]:
            x = fn()
            res[name].append(x)
            log(f"round {r + 1}/{n} {name}: {x['wall']:.1f} s whole, {x['encode']:.1f} s embedding")
    return res


def med(results, key):
    return statistics.median(x[key] for x in results)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}


def main():
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(ARGS.out, exist_ok=True)
    mixed = os.path.join(ARGS.workloads_dir, "mixed.txt")
    with open(mixed, encoding="utf-8") as f:
        texts = f.read().split("\n")[:-1]
    corpus = os.path.join(ARGS.out, f"mixed-x{ARGS.repeat}.txt")
    ray_txt = os.path.join(ARGS.out, f"mixed-x{ARGS.ray_repeat}.txt")
    ray_parquet = os.path.join(ARGS.out, f"mixed-x{ARGS.ray_repeat}.parquet")
    for path, k in ((corpus, ARGS.repeat), (ray_txt, ARGS.ray_repeat)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in texts * k))
    ray_texts = texts * ARGS.ray_repeat
    pq.write_table(pa.table({"id": list(range(len(ray_texts))), "text": ray_texts}), ray_parquet)
    o = lambda name: os.path.join(ARGS.out, name)  # noqa: E731
    mi, load0 = machine(), os.getloadavg()
    log(f"machine {mi['host']}: {mi['cpu']}, {mi['cores']} cores, load {load0[0]:.2f}; threads {ARGS.threads}; "
        f"{len(texts)} mixed texts x {ARGS.repeat} (encode), x {ARGS.ray_repeat} (Ray)")
    names = ARGS.engines.split(",")
    engines = [(n, fn) for n, fn in (("ember embed", lambda: ember_embed(corpus, o("ember.npy"))),
                                     ("python", lambda: py_encode(corpus, o("python.npy"))),
                                     ("st", lambda: st_encode(corpus, o("st.npy"))))
               if n.split()[0] in names]
    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": mi,
           "threads": ARGS.threads, "batch": ARGS.batch, "model": ARGS.model, "rounds": ARGS.rounds,
           "ray_rounds": ARGS.ray_rounds, "actors": ARGS.actors, "repeat": ARGS.repeat,
           "ray_repeat": ARGS.ray_repeat, "load_start": load0[:3],
           "ember": subprocess.run([ARGS.ember, "--version"], capture_output=True, text=True).stdout.strip(),
           "encode": rounds(engines, ARGS.rounds) if engines else {}, "ray": {}, "checks": {}}
    if "ray" in names:
        res["ray"] = rounds([("ember embed", lambda: ember_embed(ray_txt, o("ember-ray.npy"))),
                             ("ray", lambda: ray_job(ray_parquet, o("ray-out")))], ARGS.ray_rounds)
    res["load_end"] = os.getloadavg()[:3]
    # the vectors agree (batches differ between engines: rounding only)
    want = np.load(o("ember.npy")) if "ember" in names else None
    if want is not None and "python" in names:
        res["checks"]["python_max_abs_diff"] = float(np.abs(np.load(o("python.npy")) - want).max())
    if want is not None and "st" in names:
        st = np.load(o("st.npy"))
        res["checks"]["st_min_cosine"] = float(((st * want).sum(1) / (np.linalg.norm(st, axis=1) *
                                                                       np.linalg.norm(want, axis=1))).min())
    if "ray" in names:
        t = pq.read_table(o("ray-out")).sort_by("id")
        got = np.asarray(t.column("embedding").combine_chunks().values).reshape(t.num_rows, -1)
        res["checks"]["ray_rows"] = t.num_rows
        res["checks"]["ray_max_abs_diff"] = float(np.abs(got - np.load(o("ember-ray.npy"))).max())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(ARGS.out, f"python-bench-{stamp}.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = report(res)
    print(md)
    if not ARGS.no_append:
        with open(ARGS.results, "a") as f:
            f.write("\n" + md)
        log(f"appended to {ARGS.results}")


def report(res):
    mi, enc, ray = res["machine"], res["encode"], res["ray"]
    lines = [f"## {res['date'][:10]}, CPU: the Python package against ember embed and sentence-transformers, "
             f"and the Ray job — all-MiniLM-L6-v2, {res['threads']} threads",
             "",
             f"`bench/python_bench` on **{mi['host']}** ({mi['cpu']}, {mi['cores']} cores, Linux {mi['kernel']}, "
             f"Python {mi['python']}); load average {res['load_start'][0]:.2f} at the start, "
             f"{res['load_end'][0]:.2f} at the end. {res['ember']}. The mixed workload "
             f"(bench/workloads.py) {res['repeat']} times over for encode, {res['ray_repeat']} times for Ray; "
             f"every engine a process of its own, timed whole; medians of {res['rounds']} rounds "
             f"({res['ray_rounds']} for Ray) taking turns.",
             ""]
    if enc:
        base = med(enc["ember embed"], "wall")
        rows = enc["ember embed"][0]["rows"]
        lines += ["| engine | whole process | embedding alone | texts/s (whole) | whole vs ember embed |",
                  "|---|---|---|---|---|"]
        labels = {"ember embed": "`ember embed` (the program)",
                  "python": f"Python `ember.Model.encode` (batch_size={res['batch']})",
                  "st": f"sentence-transformers `encode` (batch_size={res['batch']}), PyTorch CPU"}
        for name, rs in enc.items():
            w = med(rs, "wall")
            lines.append(f"| {labels[name]} | {w:.1f} s | {med(rs, 'encode'):.1f} s | {rows / w:.1f} | "
                         f"{w / base:.3f}× the time |")
        lines.append("")
        if "python" in enc:
            over = med(enc["python"], "wall") / base - 1
            lines.append(f"- The binding's overhead: Python's whole process takes {100 * over:+.1f}% of "
                         f"`ember embed`'s (goal: ≤ +5%): {'met' if over <= 0.05 else 'missed'}.")
        if "st" in enc:
            lines.append(f"- ember (Python) against sentence-transformers: "
                         f"{med(enc['st'], 'wall') / med(enc['python'], 'wall'):.2f}× (whole processes), "
                         f"{med(enc['st'], 'encode') / med(enc['python'], 'encode'):.2f}× (embedding alone).")
    if ray:
        rows = ray["ray"][0]["rows"]
        e_rate = rows / med(ray["ember embed"], "wall")
        job = rows / med(ray["ray"], "encode")
        whole = rows / med(ray["ray"], "wall")
        lines += ["",
                  f"- Ray: `python -m ember.ray_embed` ({res['actors']} actors × 1 thread, a local cluster it "
                  f"starts, Parquet in and out) on {rows} rows: {job:.1f} rows/s over the job, {whole:.1f} rows/s "
                  f"over its whole process (cluster start included); `ember embed` on the same texts: "
                  f"{e_rate:.1f} rows/s (whole process). Ratio {job / e_rate:.2f}× over the job, "
                  f"{whole / e_rate:.2f}× whole (goal: ≥ 0.7×): {'met' if job / e_rate >= 0.7 else 'missed'}."]
    ch = res["checks"]
    if ch:
        lines.append("- Checks: " + "; ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                               for k, v in ch.items()) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
