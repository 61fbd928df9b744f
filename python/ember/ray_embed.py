"""Embed a Parquet or JSONL corpus on a Ray cluster, into Parquet.

    python -m ember.ray_embed INPUT OUTPUT --model DIR --text-column text [--id-column id]
                              [--actors N] [--gpus-per-actor 1] [--batch-size B]

INPUT: a Parquet file or folder, or JSON lines (.jsonl, .json, .gz), on any filesystem
pyarrow reads (a local path, s3://, gs://, hdfs://, ...). OUTPUT: a folder of Parquet
files holding every input column plus the embedding (a fixed-size list of float32),
which must not exist yet or be empty (--overwrite empties it). Ray Data reads, schedules,
retries and writes; each actor loads the model once (ember.ray.Embedder).

The cluster: the one at --address (or $RAY_ADDRESS) when given; else a running one on
this machine (ray.init(address="auto")); else a local one is started (--num-cpus,
--object-store-memory). On a multi-node cluster the model directory must exist at the
same path on every node.

A null text gets a null embedding (--null-text error: stop, naming the row); an empty
text is embedded as `ember embed` embeds an empty line.
"""
import argparse
import inspect
import os
import sys
import time

from .ray import NULL_TEXT


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m ember.ray_embed", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="Parquet file or folder, or JSON lines, local or any pyarrow filesystem")
    ap.add_argument("output", help="a folder for the Parquet output")
    ap.add_argument("--model", required=True, help="the model directory (the same path on every node)")
    ap.add_argument("--text-column", default="text", help="the column of texts (default: text)")
    ap.add_argument("--id-column", help="a column naming rows in messages (kept in the output like every column)")
    ap.add_argument("--output-column", default="embedding", help="the column added (default: embedding)")
    ap.add_argument("--input-format", choices=["parquet", "jsonl"],
                    help="default: jsonl for .jsonl/.json/.ndjson (.gz), else parquet")
    ap.add_argument("--actors", type=int, help="model replicas (default: one per GPU with --gpus-per-actor, "
                    "else one per --cpus-per-actor CPUs of the cluster, less one for reading and writing)")
    ap.add_argument("--gpus-per-actor", type=float, default=0, help="GPUs per actor (default 0: CPU actors)")
    ap.add_argument("--cpus-per-actor", type=float, default=1,
                    help="CPUs per actor, and the threads of a CPU actor's model (default 1)")
    ap.add_argument("--batch-size", type=int, help="rows per batch handed to an actor "
                    "(default: 512 on CPUs, 4096 on GPUs)")
    ap.add_argument("--device", help="default: cuda with --gpus-per-actor, else cpu")
    ap.add_argument("--dtype", help="fp32 (default), fp16 or bf16 (GPU)")
    ap.add_argument("--max-length", type=int, help="tokens per text (default: the model's)")
    ap.add_argument("--pooling", help="cls, mean, max, mean_sqrt_len (default: the model's)")
    norm = ap.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_const", const=True, default=None)
    norm.add_argument("--no-normalize", dest="normalize", action="store_const", const=False)
    ap.add_argument("--null-text", choices=NULL_TEXT, default="null",
                    help="a null text gets a null embedding (default), or stops the job naming the row")
    ap.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                    help="the cluster to join (default: $RAY_ADDRESS, else a running one, else a local one)")
    ap.add_argument("--num-cpus", type=int, help="CPUs of a local cluster started here (default: every core)")
    ap.add_argument("--object-store-memory", type=int, metavar="BYTES",
                    help="object store of a local cluster started here (default: Ray's)")
    ap.add_argument("--rows-per-file", type=int, default=100_000,
                    help="rows per output file, about (default 100000; the last file of a write task has fewer)")
    ap.add_argument("--preserve-order", action="store_true", help="write rows in input order (slower)")
    ap.add_argument("--overwrite", action="store_true", help="empty OUTPUT first if it holds files")
    a = ap.parse_args(argv)
    for name in ("actors", "batch_size", "max_length", "num_cpus", "object_store_memory", "rows_per_file"):
        v = getattr(a, name)
        if v is not None and v < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if a.gpus_per_actor < 0 or a.cpus_per_actor <= 0:
        ap.error("--gpus-per-actor must be >= 0 and --cpus-per-actor > 0")
    if a.input_format is None:
        base = a.input.lower()
        for ext in (".gz", ".bz2", ".zst", ".lz4", ".br"):
            base = base[:-len(ext)] if base.endswith(ext) else base
        a.input_format = "jsonl" if base.endswith((".jsonl", ".json", ".ndjson")) else "parquet"
    if a.device is None:
        a.device = "cuda" if a.gpus_per_actor > 0 else "cpu"
    if a.batch_size is None:
        a.batch_size = 4096 if a.gpus_per_actor > 0 else 512
    return a


def log(msg):
    print(f"ray_embed: {msg}", file=sys.stderr, flush=True)


def _filesystem(path):
    """(pyarrow filesystem, path in it) for a local path or a URI."""
    import pyarrow.fs as pafs
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def prepare_output(path, overwrite):
    import pyarrow.fs as pafs
    fs, p = _filesystem(path)
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.File:
        raise SystemExit(f"ray_embed: error: {path} is a file; OUTPUT is a folder")
    if info.type == pafs.FileType.Directory and fs.get_file_info(pafs.FileSelector(p)):
        if not overwrite:
            raise SystemExit(f"ray_embed: error: {path} is not empty (--overwrite empties it)")
        fs.delete_dir_contents(p)


def connect(args):
    """ray.init: the cluster asked for, a running one, or a local one; returns how."""
    import ray
    if args.address:
        ray.init(address=args.address)
        return f"joined the cluster at {args.address}"
    try:
        ray.init(address="auto")
        return "joined the running cluster"
    except ConnectionError:
        pass
    ray.init(num_cpus=args.num_cpus, object_store_memory=args.object_store_memory)
    return "started a local cluster"


def plan_actors(args, resources):
    """(actors, the CPUs each asks Ray for)."""
    cpus = resources.get("CPU", 0)
    if args.gpus_per_actor > 0:
        gpus = resources.get("GPU", 0)
        if gpus < args.gpus_per_actor:
            raise SystemExit(f"ray_embed: error: --gpus-per-actor {args.gpus_per_actor:g} but the cluster has "
                             f"{gpus:g} GPUs")
        return args.actors or max(1, int(gpus // args.gpus_per_actor)), args.cpus_per_actor
    actors = args.actors or max(1, int((cpus - 1) // args.cpus_per_actor))
    # Ray Data's list, read and write tasks each need a whole CPU: actors that
    # took every CPU would leave them none and the job would wait forever. Such
    # actors ask for less (their threads stay --cpus-per-actor).
    if actors * args.cpus_per_actor > cpus - 1:
        share = max(cpus - 1, 0) / actors
        log(f"{actors} actors x {args.cpus_per_actor:g} CPUs would leave none of the cluster's {cpus:g} for "
            f"reading and writing: each asks Ray for {share:.2f} CPU, and runs "
            f"{max(1, int(args.cpus_per_actor))} thread(s)")
        return actors, share
    return actors, args.cpus_per_actor


def read(args):
    import ray.data
    if args.input_format == "parquet":
        return ray.data.read_parquet(args.input)
    kw = {"lines": True} if "lines" in inspect.signature(ray.data.read_json).parameters else {}
    return ray.data.read_json(args.input, **kw)


def input_columns(args):
    """The input's columns, from the files' metadata through pyarrow (None when pyarrow
    cannot tell without Ray: then Ray's schema is checked once the cluster is up)."""
    try:
        import pyarrow.dataset as pads
        fs, p = _filesystem(args.input)
        return pads.dataset(p, format="parquet" if args.input_format == "parquet" else "json",
                            filesystem=fs).schema.names
    except FileNotFoundError:
        raise SystemExit(f"ray_embed: error: {args.input}: no such file or folder") from None
    except Exception:
        return None


def check_columns(names, args):
    for what, col in (("--text-column", args.text_column), ("--id-column", args.id_column)):
        if col is not None and col not in names:
            raise SystemExit(f"ray_embed: error: {args.input} has no column {col!r} ({what}; columns: "
                             f"{', '.join(names)})")
    if args.output_column in names:
        raise SystemExit(f"ray_embed: error: {args.input} already has a column {args.output_column!r} "
                         "(--output-column names another)")


def root_message(exc):
    """The message of the error a Ray job failed with, unwrapped from Ray's exceptions."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if inner is None or inner is exc:
            break
        exc = inner
    return f"{type(exc).__name__}: {exc}"


def run(args):
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from .ray import Embedder

    if not os.path.isdir(args.model):
        raise SystemExit(f"ray_embed: error: {args.model}: model directory not found")
    names = input_columns(args)
    if names is not None:
        check_columns(names, args)
    prepare_output(args.output, args.overwrite)
    t_start = time.monotonic()
    how = connect(args)
    resources = ray.cluster_resources()
    actors, actor_cpus = plan_actors(args, resources)
    log(f"{how}: {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs, "
        f"{len(ray.nodes())} nodes; {actors} actors on {args.device}")
    DataContext.get_current().execution_options.preserve_order = args.preserve_order
    ds = read(args)
    if names is None:
        check_columns(ds.schema().names, args)
    # blocks of one batch each, so that every actor gets work whatever the
    # input's files and row groups (a streaming split, no shuffle)
    if "target_num_rows_per_block" in inspect.signature(ds.repartition).parameters:
        ds = ds.repartition(target_num_rows_per_block=args.batch_size)
    kwargs = dict(model_dir=os.path.abspath(args.model), text_column=args.text_column,
                  output_column=args.output_column, id_column=args.id_column, device=args.device,
                  dtype=args.dtype, max_length=args.max_length, normalize_embeddings=args.normalize,
                  pooling=args.pooling, null_text=args.null_text,
                  threads=None if args.gpus_per_actor > 0 else max(1, int(args.cpus_per_actor)))
    ds = ds.map_batches(Embedder, fn_constructor_kwargs=kwargs, batch_size=args.batch_size,
                        batch_format="pyarrow", compute=ActorPoolStrategy(size=actors), num_cpus=actor_cpus,
                        num_gpus=args.gpus_per_actor or None)
    # blocks are one batch each: without this every batch would be a file
    write_kw = {"min_rows_per_file": args.rows_per_file} \
        if "min_rows_per_file" in inspect.signature(ds.write_parquet).parameters else {}
    t_job = time.monotonic()
    ds.write_parquet(args.output, **write_kw)
    t_end = time.monotonic()
    import pyarrow.dataset as pads
    fs, p = _filesystem(args.output)
    rows = pads.dataset(p, format="parquet", filesystem=fs).count_rows()
    job = t_end - t_job
    log(f"{rows} rows to {args.output} in {job:.1f} s ({rows / max(job, 1e-9):.1f} rows/s; "
        f"{t_end - t_start:.1f} s with the cluster's start)")
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except SystemExit:
        raise
    except Exception as e:  # a failed job: Ray's exceptions wrap the actor's
        log(f"error: {root_message(e)}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
