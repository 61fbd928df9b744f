#!/usr/bin/env python3
"""ember against the engines a user would otherwise pick, in one run, on the
same inputs, model and thread count. Run through bench/compare, which makes
the virtual environment this needs; see bench/README.md.

Peers:
  st    sentence-transformers on PyTorch CPU, fp32 (model.encode)
  ort   ONNX Runtime CPU: the model exported with torch.onnx, fused by ORT's
        transformer optimizer (attention, LayerNorm, GELU) and run with every
        graph optimisation on; batches sorted by length, as ST does; Hugging
        Face `tokenizers` for the inputs, mean pooling and L2 norm in numpy
  hf    Hugging Face `tokenizers` alone, one thread, for tokenization

Each measurement is one pass over a workload file at one batch size; the
engines take turns (the order rotating every round), and the report is the
median of the rounds. ember runs as `ember bench` in a subprocess (its own
warm-up pass, then the timed pass); the peers are loaded once, warmed once.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ember", default=os.environ.get("EMBER_BIN", os.path.join(ROOT, "build/ember")))
    ap.add_argument("--model", default=os.path.join(ROOT, "weights/all-MiniLM-L6-v2"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workloads-dir", default=os.path.join(HERE, "out/workloads"))
    ap.add_argument("--workloads", default="short,passages,long,mixed",
                    help="workloads timed at --batch (each also tokenized)")
    ap.add_argument("--batch", type=int, default=32, help="texts per call for the workload table")
    ap.add_argument("--batch-sizes", default="1,8,32,128", help="the sweep on the mixed workload")
    ap.add_argument("--lengths", default="16,64,256", help="the sweep over len-N workloads")
    ap.add_argument("--engines", default="ember,st,ort")
    ap.add_argument("--out", default=os.path.join(HERE, "out"))
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--chart", default=os.path.join(HERE, "compare.png"))
    ap.add_argument("--no-append", action="store_true", help="do not add a section to RESULTS.md")
    ap.add_argument("--quick", action="store_true", help="2 rounds, batch sizes 1,32, lengths 16,64 (overriding those options)")
    ap.add_argument("--report", metavar="JSON", help="no measuring: write the report and chart of a saved run "
                    "(bench/out/compare-*.json) and append it to RESULTS.md")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.batch_sizes, a.lengths = 2, "1,32", "16,64"
    return a


ARGS = parse_args()
T = str(ARGS.threads)
# Thread counts are fixed before torch, onnxruntime or tokenizers load.
# tokenizers runs single-threaded everywhere (its own benchmark is one
# thread; inside the peers' encode it is a few percent of the time).
os.environ.update(OMP_NUM_THREADS=T, MKL_NUM_THREADS=T, OPENBLAS_NUM_THREADS=T,
                  TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS="1", RAYON_RS_NUM_CPUS="1",
                  HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

import numpy as np  # noqa: E402


def log(msg):
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


# ---- the engines --------------------------------------------------------------------


class Ember:
    name = "ember"

    def __init__(self):
        self.version = subprocess.run([ARGS.ember, "--version"], capture_output=True, text=True).stdout.strip()

    def bench(self, path, extra):
        cmd = [ARGS.ember, "bench", "-i", path, "-m", ARGS.model, "--threads", T, "--runs", "1", "--seconds", "0",
               "--json", "-", "-q"] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def encode(self, path, texts, batch):
        j = self.bench(path, ["-b", str(batch), "--no-tokenize", "--warmup", "0"])
        self.last = j
        return j["encode"][0]["pass_s"][0]

    def tokenize(self, path):
        j = self.bench(path, ["--tokenize-only", "--warmup", "0.2"])
        return j["tokenize"]["pass_s"][0], j["tokenize"]["tokens"]


class SentenceTransformersCPU:
    name = "st"

    def __init__(self):
        import torch
        from sentence_transformers import SentenceTransformer
        torch.set_num_threads(ARGS.threads)
        torch.set_num_interop_threads(1)
        self.model = SentenceTransformer(ARGS.model, device="cpu")
        self.version = f"sentence-transformers {__import__('sentence_transformers').__version__}, torch {torch.__version__}"
        self.max_len = self.model.max_seq_length
        self.model.encode(["warm up"] * 8)

    def encode(self, path, texts, batch):
        t = time.perf_counter()
        self.vectors = self.model.encode(texts, batch_size=batch, convert_to_numpy=True)
        return time.perf_counter() - t


class OnnxRuntimeCPU:
    name = "ort"

    def __init__(self, max_len):
        import onnxruntime as ort
        from tokenizers import Tokenizer
        self.max_len = max_len
        path = self.export()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = ARGS.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.sess.get_inputs()]
        self.tok = Tokenizer.from_file(os.path.join(ARGS.model, "tokenizer.json"))
        self.tok.enable_truncation(max_len)
        self.tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self.version = f"onnxruntime {ort.__version__}"
        self.run_batch(["warm up"] * 8)

    def export(self):
        """torch.onnx (TorchScript exporter, opset 17), then ORT's BERT fusions."""
        import torch
        from transformers import AutoModel
        from onnxruntime.transformers.optimizer import optimize_model
        d = os.path.join(ARGS.out, "onnx", os.path.basename(os.path.normpath(ARGS.model)))
        raw, opt = os.path.join(d, "model.onnx"), os.path.join(d, "model-opt.onnx")
        if os.path.exists(opt):
            return opt
        os.makedirs(d, exist_ok=True)
        log(f"exporting {ARGS.model} to ONNX")
        m = AutoModel.from_pretrained(ARGS.model, attn_implementation="eager").eval()

        class LastHidden(torch.nn.Module):  # positional inputs, one output
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        ids = torch.ones(2, 16, dtype=torch.long)
        with torch.no_grad():
            torch.onnx.export(LastHidden(m), (ids, torch.ones_like(ids), torch.zeros_like(ids)), raw, dynamo=False,
                              input_names=["input_ids", "attention_mask", "token_type_ids"],
                              output_names=["last_hidden_state"], opset_version=17,
                              dynamic_axes={n: {0: "batch", 1: "seq"} for n in
                                            ["input_ids", "attention_mask", "token_type_ids", "last_hidden_state"]})
        cfg = m.config
        o = optimize_model(raw, model_type="bert", num_heads=cfg.num_attention_heads, hidden_size=cfg.hidden_size,
                           opt_level=1)
        self.fusions = o.get_fused_operator_statistics()
        log(f"ORT fusions: {self.fusions}")
        o.save_model_to_file(opt)
        return opt

    def run_batch(self, texts):
        enc = self.tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        h = self.sess.run(None, {k: v for k, v in feeds.items() if k in self.inputs})[0]
        m = mask[:, :, None].astype(np.float32)
        v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def encode(self, path, texts, batch):
        t = time.perf_counter()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as sentence-transformers does
        parts = []
        for i in range(0, len(texts), batch):
            parts.append(self.run_batch([texts[j] for j in order[i:i + batch]]))
        v = np.concatenate(parts)
        out = np.empty_like(v)
        out[order] = v
        dt = time.perf_counter() - t
        self.vectors = out
        return dt


class HFTokenizers:
    name = "hf"

    def __init__(self):
        import tokenizers
        from tokenizers import Tokenizer
        self.tok = Tokenizer.from_file(os.path.join(ARGS.model, "tokenizer.json"))
        self.tok.no_truncation()
        self.tok.no_padding()
        self.version = f"tokenizers {tokenizers.__version__}"

    def tokenize(self, texts):
        """The faster of encode_batch (serial: parallelism off) and a loop of
        encode, so the peer gets its best number."""
        t = time.perf_counter()
        enc = self.tok.encode_batch(texts)
        t_batch = time.perf_counter() - t
        t = time.perf_counter()
        for s in texts:
            self.tok.encode(s)
        t_loop = time.perf_counter() - t
        return min(t_batch, t_loop), sum(len(e.ids) for e in enc), enc


# ---- measuring -------------------------------------------------------------------------


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = "none"
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip():
            gpu = "; ".join(r.stdout.strip().splitlines())
    except (OSError, subprocess.TimeoutExpired):
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "")
    except OSError:
        pass
    isa = "avx512f" if " avx512f" in flags else "avx2" if " avx2" in flags else "other"
    return {"cpu": cpu, "cores": os.cpu_count(), "isa": isa, "gpu": gpu, "kernel": platform.release(),
            "python": platform.python_version()}


def rounds(engines, fn):
    """fn(engine) -> seconds, for each engine, ARGS.rounds times, taking turns."""
    times = {e.name: [] for e in engines}
    for r in range(ARGS.rounds):
        k = r % len(engines)
        for e in engines[k:] + engines[:k]:
            times[e.name].append(fn(e))
    return times


def median(v):
    return statistics.median(v) if v else float("nan")


def publish(res):
    chart(res)
    md = report(res)
    print(md)
    if not ARGS.no_append:
        with open(ARGS.results, "a") as f:
            f.write("\n" + md)
        log(f"appended to {ARGS.results}")


def main():
    if ARGS.report:
        with open(ARGS.report) as f:
            publish(json.load(f))
        return
    os.makedirs(ARGS.out, exist_ok=True)
    wmeta_path = os.path.join(ARGS.workloads_dir, "workloads.json")
    with open(wmeta_path) as f:
        wmeta = json.load(f)
    mi = machine()
    load0 = os.getloadavg()
    log(f"machine: {mi['cpu']}, {mi['cores']} cores, load {load0[0]:.2f}; threads {T}")

    names = ARGS.engines.split(",")
    engines = []
    if "ember" in names:
        engines.append(Ember())
    st = None
    if "st" in names or "ort" in names:
        st = SentenceTransformersCPU()
        if "st" in names:
            engines.append(st)
    if "ort" in names:
        engines.append(OnnxRuntimeCPU(st.max_len))
    hf = HFTokenizers()
    ember = next((e for e in engines if e.name == "ember"), None)
    versions = {e.name: e.version for e in engines + [hf]}
    log("versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()))

    res = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "machine": mi,
           "threads": ARGS.threads, "rounds": ARGS.rounds, "model": ARGS.model, "versions": versions,
           "command": os.environ.get("EMBER_COMPARE_COMMAND",
                                     "bench/compare.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])),
           "workloads": wmeta, "encode": [], "tokenize": [], "checks": {}}

    def encode_point(wl, batch, kind):
        if wl not in wmeta:
            sys.exit(f"compare: no workload {wl} in {wmeta_path} (bench/workloads.py --lengths writes len-N)")
        path = wmeta[wl]["path"]
        texts = read_lines(path)
        times = rounds(engines, lambda e: e.encode(path, texts, batch))
        tokens = None
        if ember is not None:
            tokens = ember.last["workload"]["tokens"]  # as the model sees them: truncated, with [CLS]/[SEP]
        row = {"kind": kind, "workload": wl, "batch": batch, "texts": len(texts), "tokens": tokens,
               "seconds": times, "median_s": {k: median(v) for k, v in times.items()}}
        row["texts_per_s"] = {k: len(texts) / v for k, v in row["median_s"].items()}
        if tokens:
            row["tokens_per_s"] = {k: tokens / v for k, v in row["median_s"].items()}
        if ember is not None:
            row["ember_peak_rss_mb"] = ember.last["memory"]["peak_rss_mb"]
        desc = ", ".join(f"{k} {v:.1f}/s" for k, v in row["texts_per_s"].items())
        log(f"{kind} {wl} batch {batch}: {desc}")
        res["encode"].append(row)
        return row

    for wl in ARGS.workloads.split(","):
        encode_point(wl, ARGS.batch, "workload")
    for b in [int(x) for x in ARGS.batch_sizes.split(",") if x]:
        if b != ARGS.batch or "mixed" not in ARGS.workloads.split(","):
            encode_point("mixed", b, "batch")
    for n in [int(x) for x in ARGS.lengths.split(",") if x]:
        encode_point(f"len-{n}", ARGS.batch, "length")

    # tokenization: ember bench --tokenize-only against tokenizers, one thread each
    for wl in ARGS.workloads.split(","):
        path = wmeta[wl]["path"]
        texts = read_lines(path)
        te, th, tok_e, tok_h = [], [], None, None
        for r in range(ARGS.rounds):
            pair = [("ember", lambda: ember.tokenize(path)), ("hf", lambda: hf.tokenize(texts)[:2])]
            for name, fn in (pair if r % 2 == 0 else pair[::-1]):
                s, n = fn()
                (te if name == "ember" else th).append(s)
                if name == "ember":
                    tok_e = n
                else:
                    tok_h = n
        row = {"workload": wl, "texts": len(texts), "bytes": os.path.getsize(path), "tokens": {"ember": tok_e, "hf": tok_h},
               "seconds": {"ember": te, "hf": th}}
        row["tokens_per_s"] = {"ember": tok_e / median(te), "hf": tok_h / median(th)}
        log(f"tokenize {wl}: ember {row['tokens_per_s']['ember']:.0f} tokens/s, "
            f"tokenizers {row['tokens_per_s']['hf']:.0f} tokens/s")
        res["tokenize"].append(row)

    # checks: identical ids; ember's vectors against sentence-transformers'
    for wl in ARGS.workloads.split(","):
        path = wmeta[wl]["path"]
        texts = read_lines(path)
        r = subprocess.run([ARGS.ember, "tokenize", "--ids", "--no-truncate", "-i", path, "-m", ARGS.model],
                           capture_output=True, text=True)
        ours = [list(map(int, line.split())) for line in r.stdout.splitlines()]
        theirs = [e.ids for e in hf.tok.encode_batch(texts)]
        bad = [i for i in range(len(texts)) if i >= len(ours) or ours[i] != theirs[i]]
        res["checks"][f"ids_{wl}"] = {"texts": len(texts), "different": len(bad), "first": bad[:5]}
        log(f"ids {wl}: {len(texts) - len(bad)}/{len(texts)} identical")
        if st is not None:
            npy = os.path.join(ARGS.out, f"ember-{wl}.npy")
            subprocess.run([ARGS.ember, "embed", "-q", "-m", ARGS.model, "--threads", T, "-o", npy, path], check=True)
            mine = np.load(npy)
            ref = st.model.encode(texts, batch_size=32, convert_to_numpy=True)
            cos = (mine * ref).sum(1) / (np.linalg.norm(mine, axis=1) * np.linalg.norm(ref, axis=1))
            res["checks"][f"cosine_{wl}"] = {"min": float(cos.min()), "argmin": int(cos.argmin())}
            log(f"ember vs sentence-transformers on {wl}: lowest cosine {cos.min():.7f}")
            ort_e = next((e for e in engines if e.name == "ort"), None)
            if ort_e is not None:
                ort_e.encode(path, texts, 32)
                c2 = (ort_e.vectors * ref).sum(1)
                res["checks"][f"ort_cosine_{wl}"] = {"min": float(c2.min())}

    load1 = os.getloadavg()
    res["load"] = {"start": load0, "end": load1}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    jpath = os.path.join(ARGS.out, f"compare-{stamp}.json")
    with open(jpath, "w") as f:
        json.dump(res, f, indent=2)
    log(f"results: {jpath}")
    publish(res)


# ---- reporting ------------------------------------------------------------------------------


def ratio(a, b):
    return a / b if a and b else float("nan")


def report(res):
    mi = res["machine"]
    L = []
    L.append(f"## {res['date'][:10]}: {os.path.basename(os.path.normpath(res['model']))}, {res['threads']} threads")
    L.append("")
    L.append(f"- machine: {mi['cpu']}, {mi['cores']} cores ({mi['isa']}), GPU: {mi['gpu']}, Linux {mi['kernel']}")
    L.append(f"- load average (1 min): {res['load']['start'][0]:.2f} at start, {res['load']['end'][0]:.2f} at end "
             "(other work on the machine shares its cores)")
    L.append(f"- command: `{res['command']}` ({res['rounds']} rounds, engines taking turns; medians)")
    L.append("- software: " + "; ".join(f"{v}" for v in res["versions"].values()))
    wl = res["workloads"]
    L.append("- workloads (bench/workloads.py; tokens before truncation): " +
             ", ".join(f"{k} {v['texts']} texts × {v['mean_tokens']}" for k, v in wl.items()
                       if not k.startswith("len-")) + "; sha256 in the JSON")
    L.append("")
    eng = [e for e in ["ember", "st", "ort"] if any(e in r["median_s"] for r in res["encode"])]
    names = {"ember": "ember", "st": "sentence-transformers", "ort": "ONNX Runtime"}

    def table(rows, key):
        head = f"| {key} | tokens | " + " | ".join(f"{names[e]} texts/s" for e in eng)
        if "ember" in eng:
            head += " | " + " | ".join(f"ember / {names[e]}" for e in eng if e != "ember")
        head += " |"
        L.append(head)
        L.append("|" + "---|" * (head.count("|") - 1))
        for r in rows:
            k = r["workload"] if key == "workload" else r["batch"] if key == "batch" else r["workload"][4:]
            cells = [str(k), str(r["tokens"])] + [f"{r['texts_per_s'][e]:.1f}" for e in eng]
            if "ember" in eng:
                cells += [f"{ratio(r['texts_per_s']['ember'], r['texts_per_s'][e]):.2f}×" for e in eng if e != "ember"]
            L.append("| " + " | ".join(cells) + " |")
        L.append("")

    rows = [r for r in res["encode"] if r["kind"] == "workload"]
    if rows:
        L.append(f"End to end (texts in, normalised vectors out), batch {rows[0]['batch']}:")
        L.append("")
        table(rows, "workload")
    rows = [r for r in res["encode"] if r["workload"] == "mixed"]
    rows = sorted({r["batch"]: r for r in rows}.values(), key=lambda r: r["batch"])
    if len(rows) > 1:
        L.append("Mixed workload against batch size:")
        L.append("")
        table(rows, "batch")
    rows = [r for r in res["encode"] if r["kind"] == "length"]
    if rows:
        L.append(f"Against length (len-N: texts of exactly N tokens), batch {rows[0]['batch']}:")
        L.append("")
        table(rows, "length")
    if res["tokenize"]:
        L.append("Tokenization, one thread each, no truncation (tokens/s):")
        L.append("")
        L.append("| workload | ember | tokenizers | ember / tokenizers | identical ids |")
        L.append("|---|---|---|---|---|")
        for r in res["tokenize"]:
            c = res["checks"].get(f"ids_{r['workload']}", {})
            same = f"{c['texts'] - c['different']}/{c['texts']}" if c else "?"
            L.append(f"| {r['workload']} | {r['tokens_per_s']['ember']:.0f} | {r['tokens_per_s']['hf']:.0f} | "
                     f"{ratio(r['tokens_per_s']['ember'], r['tokens_per_s']['hf']):.2f}× | {same} |")
        L.append("")
    cos = {k[7:]: v["min"] for k, v in res["checks"].items() if k.startswith("cosine_")}
    if cos:
        L.append("Lowest cosine of ember's vector to sentence-transformers' per workload: " +
                 ", ".join(f"{k} {v:.6f}" for k, v in cos.items()) + ".")
        L.append("")
    # the floors
    mixed = next((r for r in res["encode"] if r["workload"] == "mixed" and r["kind"] == "workload"), None)
    floors = []
    if mixed and "ember" in eng:
        for e, want in (("st", 2.0), ("ort", 1.2)):
            if e in mixed["texts_per_s"]:
                got = ratio(mixed["texts_per_s"]["ember"], mixed["texts_per_s"][e])
                floors.append(f"mixed vs {names[e]}: {got:.2f}× (floor {want}×: "
                              f"{'met' if got >= want else f'missed by {(1 - got / want) * 100:.0f}%'})")
    tm = next((r for r in res["tokenize"] if r["workload"] == "mixed"), None)
    if tm:
        got = ratio(tm["tokens_per_s"]["ember"], tm["tokens_per_s"]["hf"])
        floors.append(f"tokenizer on mixed: {got:.2f}× (floor 2×: {'met' if got >= 2 else f'missed by {(1 - got / 2) * 100:.0f}%'})")
    if floors:
        L.append("Floors: " + "; ".join(floors) + ".")
        L.append("")
    L.append(f"Chart: `{os.path.relpath(ARGS.chart, ROOT)}`.")
    L.append("")
    return "\n".join(L)


def chart(res):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = {"ember": "ember", "st": "sentence-transformers (PyTorch)", "ort": "ONNX Runtime"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    mixed = sorted({r["batch"]: r for r in res["encode"] if r["workload"] == "mixed"}.values(), key=lambda r: r["batch"])
    lengths = sorted([r for r in res["encode"] if r["kind"] == "length"], key=lambda r: int(r["workload"][4:]))
    for e in ["ember", "st", "ort"]:
        xs = [r["batch"] for r in mixed if e in r["tokens_per_s"]]
        if xs:
            axes[0].plot(xs, [r["tokens_per_s"][e] for r in mixed if e in r["tokens_per_s"]], "o-", label=names[e])
        xs = [int(r["workload"][4:]) for r in lengths if e in r.get("tokens_per_s", {})]
        if xs:
            axes[1].plot(xs, [r["tokens_per_s"][e] for r in lengths if e in r["tokens_per_s"]], "o-", label=names[e])
    axes[0].set(xscale="log", xlabel="batch size (texts per call)", ylabel="tokens/s",
                title="mixed workload: throughput against batch size")
    b = lengths[0]["batch"] if lengths else ARGS.batch
    axes[1].set(xscale="log", xlabel="tokens per text", ylabel="tokens/s",
                title=f"throughput against length (batch {b})")
    for ax, xs in ((axes[0], [r["batch"] for r in mixed]), (axes[1], [int(r["workload"][4:]) for r in lengths])):
        if xs:
            ax.set_xticks(xs)
            ax.set_xticklabels([str(x) for x in xs])
            ax.minorticks_off()
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend()
    model = os.path.basename(os.path.normpath(res["model"]))
    fig.suptitle(f"{model}, {res['threads']} threads, {res['machine']['cpu']} — {res['date'][:10]}", fontsize=10)
    fig.tight_layout()
    fig.savefig(ARGS.chart, dpi=100)
    plt.close(fig)
    log(f"chart: {ARGS.chart}")


if __name__ == "__main__":
    main()
