"""ember as a stage of Ray Data: a callable class for Dataset.map_batches.

    import ray
    from ember.ray import Embedder

    ds = ray.data.read_parquet("corpus.parquet")
    ds = ds.map_batches(Embedder, fn_constructor_kwargs={"model_dir": "weights/all-MiniLM-L6-v2"},
                        batch_size=1024, batch_format="pyarrow",
                        concurrency=4, num_gpus=1)          # one actor per GPU; or num_cpus=1 on CPUs
    ds.write_parquet("embedded/")

The model is loaded once per actor (in __init__); each batch comes back as it went in
plus an `embedding` column. ``python -m ember.ray_embed`` is this as a program.

Batches: a pyarrow.Table (batch_format="pyarrow"; the column is a fixed-size list of
float32), a dict of numpy arrays (batch_format="numpy"; a float32 (rows, dim) array)
or a pandas DataFrame (a column of float32 arrays).

Null texts (a missing value in the text column): by default (null_text="null") the
row's embedding is null — an Arrow null, None in pandas, and a row of NaN in numpy,
which has no null; never a vector that could pass for a text's. With
null_text="error" the batch fails with a ValueError naming the row (by its id when
id_column is given). Empty texts are embedded as ember embed embeds them ([CLS] [SEP]).

The same class serves Spark's predict_batch_udf: Embedder.embed(texts) takes a numpy
array (or list) of str and returns a float32 (rows, dim) array (README.md, "Many machines").
"""
import numpy as np

from ._model import Model

NULL_TEXT = ("null", "error")


def _ray_assigned_cpus():
    """The CPUs Ray gave this actor or task (None outside Ray, or when it gave none)."""
    try:
        import ray
        if not ray.is_initialized():
            return None
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not in a Ray worker, or an older Ray
        return None
    return max(1, int(round(cpus))) if cpus else None


class Embedder:
    """Embeds the text column of each batch with one ember.Model, loaded here once.

    model_dir             the model directory (on every node, at the same path)
    text_column           the column of texts (default "text")
    output_column         the column added (default "embedding"); an error if it exists
    id_column             a column naming rows in error messages (optional)
    device, dtype, max_length, max_batch_tokens: as ember.Model; device "auto" (the
                          default) uses the GPU Ray assigned to the actor, if any
    threads               CPU threads; None: the CPUs Ray assigned to the actor (1 by
                          default), or every core outside Ray
    normalize_embeddings, pooling, prompt_name, prompt: as Model.encode
    null_text             "null" (the default): a null text gets a null embedding;
                          "error": a ValueError naming the row
    """

    def __init__(self, model_dir, *, text_column="text", output_column="embedding", id_column=None,
                 device="auto", dtype=None, threads=None, max_length=None, max_batch_tokens=None,
                 normalize_embeddings=None, pooling=None, null_text="null", prompt_name=None, prompt=None):
        if null_text not in NULL_TEXT:
            raise ValueError(f"null_text must be 'null' or 'error', got {null_text!r}")
        if threads is None:
            threads = _ray_assigned_cpus()
        self.model = Model(model_dir, device=device, dtype=dtype, threads=threads, max_length=max_length,
                           max_batch_tokens=max_batch_tokens)
        self.dim = self.model.dim
        self.text_column, self.output_column, self.id_column = text_column, output_column, id_column
        self.normalize_embeddings, self.pooling, self.null_text = normalize_embeddings, pooling, null_text
        self.prompt_name, self.prompt = prompt_name, prompt
        if prompt is None:  # an unknown name fails in the constructor, not on the first batch
            self.model.encode([], prompt_name=prompt_name)

    # ---- the vectors ---------------------------------------------------------------------

    def _vectors(self, texts, ids=None):
        """float32 (len(texts), dim) and the null mask (None when no text is null)."""
        nulls = [i for i, t in enumerate(texts) if t is None]
        if nulls and self.null_text == "error":
            i = nulls[0]
            who = f"row {i} of the batch" + (f" ({self.id_column} {ids[i]!r})" if ids is not None else "")
            raise ValueError(f"{who} has a null {self.text_column!r} ({len(nulls)} null texts in the batch); "
                             "null_text='null' gives them a null embedding")
        for i, t in enumerate(texts):
            if t is not None and not isinstance(t, str):
                who = f"row {i} of the batch" + (f" ({self.id_column} {ids[i]!r})" if ids is not None else "")
                raise TypeError(f"{who}: column {self.text_column!r} holds {type(t).__name__}, not str")
        present = [t for t in texts if t is not None] if nulls else texts
        vectors = self.model.encode(present, batch_size=max(1, len(present)), show_progress_bar=False,
                                    normalize_embeddings=self.normalize_embeddings, pooling=self.pooling,
                                    prompt_name=self.prompt_name, prompt=self.prompt)
        if not nulls:
            return vectors, None
        mask = np.zeros(len(texts), dtype=bool)
        mask[nulls] = True
        full = np.full((len(texts), self.dim), np.nan, dtype=np.float32)
        full[~mask] = vectors
        return full, mask

    def embed(self, texts):
        """A float32 (rows, dim) array for a list or numpy array of str (None: a row of NaN,
        or a ValueError with null_text="error"). What Spark's predict_batch_udf calls."""
        if isinstance(texts, np.ndarray):
            texts = texts.tolist()
        # Spark hands a null over as NaN (pandas' missing value)
        return self._vectors([None if _is_missing(t) else t for t in texts])[0]

    # ---- batches ---------------------------------------------------------------------------

    def _check_columns(self, names):
        if self.text_column not in names:
            raise KeyError(f"the batch has no column {self.text_column!r} (columns: {', '.join(map(str, names))})")
        if self.output_column in names:
            raise ValueError(f"the batch already has a column {self.output_column!r}: choose another output_column")

    def __call__(self, batch):
        if isinstance(batch, dict):
            return self._numpy(batch)
        try:
            import pyarrow as pa
            if isinstance(batch, pa.Table):
                return self._arrow(batch)
        except ImportError:
            pass
        if hasattr(batch, "columns") and hasattr(batch, "assign"):
            return self._pandas(batch)
        raise TypeError(f"a batch must be a pyarrow.Table, a dict of numpy arrays or a pandas DataFrame, "
                        f"got {type(batch).__name__}")

    def _arrow(self, table):
        import pyarrow as pa
        self._check_columns(table.column_names)
        col = table.column(self.text_column)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                or getattr(pa.types, "is_string_view", lambda t: False)(col.type) or pa.types.is_null(col.type)):
            raise TypeError(f"column {self.text_column!r} is {col.type}, not a string column")
        ids = table.column(self.id_column).to_pylist() if self.id_column in table.column_names else None
        vectors, mask = self._vectors(col.to_pylist(), ids)
        values = pa.array(vectors.reshape(-1), type=pa.float32())  # no copy
        mask_arr = pa.array(mask) if mask is not None else None
        emb = pa.FixedSizeListArray.from_arrays(values, self.dim, mask=mask_arr)
        return table.append_column(self.output_column, emb)

    def _numpy(self, batch):
        self._check_columns(list(batch))
        ids = batch[self.id_column].tolist() if self.id_column in batch else None
        texts = batch[self.text_column]
        texts = [None if _is_missing(t) else t for t in (texts.tolist() if isinstance(texts, np.ndarray) else texts)]
        out = dict(batch)
        out[self.output_column] = self._vectors(texts, ids)[0]
        return out

    def _pandas(self, df):
        self._check_columns(list(df.columns))
        ids = df[self.id_column].tolist() if self.id_column in df.columns else None
        texts = [None if _is_missing(t) else t for t in df[self.text_column].tolist()]
        vectors, mask = self._vectors(texts, ids)
        rows = list(vectors)
        if mask is not None:
            rows = [None if m else r for r, m in zip(rows, mask)]
        return df.assign(**{self.output_column: rows})


def _is_missing(v):
    """A missing value as pandas (and Spark through it) writes one: None, NaN, pd.NA."""
    if v is None or isinstance(v, str):
        return v is None
    if isinstance(v, float):
        return v != v
    return type(v).__name__ == "NAType"
