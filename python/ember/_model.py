"""ember.Model: sentence-transformers' SentenceTransformer API over ember's C library."""
import math
import os

import numpy as np

from . import _ember
from ._progress import progress

# dtype names ember takes (what `ember --dtype` takes) and their numpy/torch spellings
_DTYPES = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "float16": "fp16", "half": "fp16",
           "bf16": "bf16", "bfloat16": "bf16"}
_OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")
_PRECISIONS = ("float32", "float16")


def _optional_int(name, value, minimum=1):
    """None, or an int >= minimum (bool is not an int here)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _texts(sentences):
    """(list of texts, whether one str was given)."""
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, (bytes, bytearray, memoryview)):
        raise TypeError("sentences must be a str or a list of str, got bytes (decode it first)")
    if isinstance(sentences, (list, tuple)):
        return sentences, False
    try:
        return list(sentences), False
    except TypeError:
        raise TypeError(f"sentences must be a str or a list of str, got {type(sentences).__name__}") from None


class Model:
    """A BERT-family encoder loaded from a Hugging Face model directory, as published.

    model_dir   config.json, model.safetensors, tokenizer files, sentence-transformers
                configs (pooling, normalisation, max_seq_length)
    device      "cpu", "cuda", "cuda:N", or "auto" (CUDA when present; the default)
    dtype       compute dtype: "fp32" (None), "fp16" or "bf16" (CUDA only)
    threads     CPU threads (None: every core)
    max_length  tokens per text, [CLS] and [SEP] included (None: the model's own limit)
    max_batch_tokens  tokens per forward pass (None: 4096 on the CPU, 32768 on a GPU)

    Threads may share one Model: tokenizing runs concurrently, encoding calls are
    serialised inside the model (use one Model per thread for parallel CPU encoding).
    """

    def __init__(self, model_dir, device="auto", dtype=None, threads=None, max_length=None,
                 max_batch_tokens=None):
        model_dir = os.fspath(model_dir)
        if device is None:
            device = "auto"
        if not isinstance(device, str):
            raise TypeError(f"device must be a str ('cpu', 'cuda', 'cuda:N', 'auto'), got {type(device).__name__}")
        if dtype is None:
            dtype = "fp32"
        elif not isinstance(dtype, str):
            dtype = getattr(dtype, "name", None) or str(dtype).replace("torch.", "")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be fp32, fp16 or bf16 (or float32, float16, bfloat16), got {dtype!r}")
        dtype = _DTYPES[dtype]
        if device == "cpu" and dtype != "fp32":
            raise ValueError(f"the CPU backend computes in fp32 only (asked for {dtype})")
        self._model = _ember.Model(model_dir, device, dtype, _optional_int("threads", threads),
                                   _optional_int("max_length", max_length, 2),
                                   _optional_int("max_batch_tokens", max_batch_tokens))
        self._info = self._model.info()

    # ---- what the model is -------------------------------------------------------------

    @property
    def info(self):
        """The model as ember reads it (ember_model_info): dim, layers, pooling, device, ..."""
        return dict(self._info)

    @property
    def dim(self):
        return self._info["dim"]

    def get_sentence_embedding_dimension(self):
        return self._info["dim"]

    @property
    def max_seq_length(self):
        """Tokens per text, [CLS] and [SEP] included; longer texts are truncated."""
        return self._info["max_length"]

    @max_seq_length.setter
    def max_seq_length(self, value):
        raise AttributeError("max_seq_length is fixed when the model loads: pass max_length= to ember.Model")

    @property
    def prompts(self):
        """config_sentence_transformers.json's prompts, name -> text (sentence-transformers' model.prompts)."""
        return dict(self._info["prompts"])

    @property
    def default_prompt_name(self):
        """The prompt encode() puts before texts when given none (None: no prompt)."""
        return self._info["default_prompt_name"]

    @property
    def device(self):
        """"cpu" or "cuda:N": the device actually used."""
        i = self._info
        return f"cuda:{i['device_index']}" if i["device"] == "cuda" else "cpu"

    def __repr__(self):
        i = self._info
        return (f"ember.Model({i['dir']!r}: {i['n_layers']} layers, dim {i['dim']}, {i['pooling']} pooling"
                f"{', normalised' if i['normalize'] else ''}, on {self.device} {i['dtype']})")

    # ---- encoding ----------------------------------------------------------------------

    def encode(self, sentences, *, batch_size=32, show_progress_bar=None, output_value="sentence_embedding",
               precision="float32", convert_to_numpy=True, convert_to_tensor=False, normalize_embeddings=None,
               pooling=None, prompt_name=None, prompt=None):
        """Embed a str (shape (dim,)) or a list of str (shape (n, dim)), as sentence-transformers does.

        batch_size            texts per call into the library (the progress bar and Ctrl-C
                              act between batches)
        output_value          "sentence_embedding" (pooled), or "token_embeddings": a list of
                              (n_tokens_i, dim) arrays, [CLS] and [SEP] included
        precision             "float32" or "float16"
        normalize_embeddings  None: as the model says (all-MiniLM-L6-v2 normalises); True/False
        pooling               None: the model's; "cls", "mean", "max", "mean_sqrt_len"
        prompt_name           a key of the model's prompts (config_sentence_transformers.json),
                              put before every text; None: its default_prompt_name, if any
        prompt                the prompt's text itself (wins over prompt_name; "": none).
                              With include_prompt false in the model's Pooling, the prompt's
                              tokens are left out of the mean, as sentence-transformers does
        convert_to_tensor     torch tensors (from_numpy, no copy) when torch is installed
        """
        texts, single = _texts(sentences)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if output_value not in _OUTPUT_VALUES:
            raise ValueError(f"output_value must be one of {', '.join(_OUTPUT_VALUES)}, got {output_value!r}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
        if normalize_embeddings not in (None, True, False):
            raise ValueError(f"normalize_embeddings must be None, True or False, got {normalize_embeddings!r}")
        if pooling is not None and not isinstance(pooling, str):
            raise TypeError(f"pooling must be a str or None, got {type(pooling).__name__}")
        for name, v in (("prompt_name", prompt_name), ("prompt", prompt)):
            if v is not None and not isinstance(v, str):
                raise TypeError(f"{name} must be a str or None, got {type(v).__name__}")
        if output_value == "token_embeddings" and (prompt_name is not None or prompt is not None):
            raise ValueError("prompt_name and prompt apply to sentence embeddings, not token_embeddings")
        normalize = {None: 0, True: 1, False: 2}[normalize_embeddings]
        n = len(texts)
        bar = progress(math.ceil(n / batch_size), show_progress_bar)
        try:
            if output_value == "token_embeddings":
                result = self._encode_tokens(texts, batch_size, precision, bar)
            else:
                result = self._encode_pooled(texts, batch_size, precision, pooling, normalize, bar,
                                             prompt_name, prompt)
        finally:
            bar.close()
        if single:
            result = result[0]
        if convert_to_tensor:
            try:
                import torch
            except ImportError:
                raise ImportError("convert_to_tensor=True needs torch; without it ember returns numpy arrays") from None
            if isinstance(result, list):
                return [torch.from_numpy(r) for r in result]
            return torch.from_numpy(result)
        if not convert_to_numpy and not single and output_value == "sentence_embedding":
            return list(result)
        return result

    def _encode_pooled(self, texts, batch_size, precision, pooling, normalize, bar, prompt_name=None, prompt=None):
        n, dim = len(texts), self._info["dim"]
        if n == 0:  # the library still checks the options (an unknown prompt name)
            self._model.encode([], np.empty((0, dim), dtype=np.float32), 0, pooling, normalize, prompt_name, prompt)
        if precision == "float32":
            out = np.empty((n, dim), dtype=np.float32)
            for i in range(0, n, batch_size):
                self._model.encode(texts[i:i + batch_size], out[i:i + batch_size], i, pooling, normalize,
                                   prompt_name, prompt)
                bar.update(1)
            return out
        out = np.empty((n, dim), dtype=np.float16)
        scratch = np.empty((min(batch_size, n), dim), dtype=np.float32)
        for i in range(0, n, batch_size):
            k = min(batch_size, n - i)
            self._model.encode(texts[i:i + k], scratch[:k], i, pooling, normalize, prompt_name, prompt)
            out[i:i + k] = scratch[:k]
            bar.update(1)
        return out

    def _encode_tokens(self, texts, batch_size, precision, bar):
        result = []
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            buf, offsets = self._model.encode_tokens(chunk, i)
            rows = np.asarray(buf)  # (tokens, dim): a view of the library's memory
            if precision == "float16":
                rows = rows.astype(np.float16)
            result.extend(rows[offsets[k]:offsets[k + 1]] for k in range(len(chunk)))
            bar.update(1)
        return result

    def similarity(self, embeddings1, embeddings2):
        """Cosine similarities, (n, m) (sentence-transformers' default similarity)."""
        from .util import cos_sim
        return cos_sim(embeddings1, embeddings2)

    # ---- cross-encoders (BertForSequenceClassification) ----------------------------------

    @property
    def num_labels(self):
        """A cross-encoder's classes (config.json's id2label); 0 for an encoder."""
        return self._info["num_labels"]

    def predict(self, sentences, *, batch_size=32, raw_scores=False, convert_to_numpy=True):
        """A cross-encoder's scores, as sentence-transformers' CrossEncoder.predict: a pair
        [text_a, text_b] (or a str) gives one score, a list of pairs (or of str) an array;
        (n,) for one label, (n, num_labels) for more. Its default activation: the sigmoid of
        the logit for one label, the logits for more; raw_scores=True: the logits."""
        if not self._info["num_labels"]:
            raise ValueError(f"{self._info['dir']} is not a cross-encoder (BertForSequenceClassification)")
        single = isinstance(sentences, str) or (isinstance(sentences, (list, tuple)) and len(sentences) > 0 and
                                                all(isinstance(x, str) for x in sentences) and len(sentences) == 2)
        items = [sentences] if single else list(sentences)
        pairs = [x for x in items if not isinstance(x, str)]
        if pairs and len(pairs) != len(items):
            raise TypeError("sentences must be all pairs [a, b] or all str, not a mix")
        if pairs and any(len(p) != 2 or not all(isinstance(t, str) for t in p) for p in pairs):
            raise TypeError("each pair must be two str: [text_a, text_b]")
        a = [p[0] for p in pairs] if pairs else items
        b = [p[1] for p in pairs] if pairs else None
        n, nl = len(a), self._info["num_labels"]
        out = np.empty((n, nl), dtype=np.float32)
        for i in range(0, n, batch_size):
            self._model.score_pairs(a[i:i + batch_size], b[i:i + batch_size] if b else None,
                                    out[i:i + batch_size], raw_scores)
        result = out[:, 0] if nl == 1 else out
        if single:
            result = result[0]
        return result if convert_to_numpy else result.tolist()

    def rank(self, query, documents, *, top_k=None, return_documents=False, batch_size=32, raw_scores=False):
        """CrossEncoder.rank: [{"corpus_id", "score"(, "text")}, ...] best first, for a
        cross-encoder of one label."""
        if self._info["num_labels"] != 1:
            raise ValueError("rank needs a cross-encoder with one label (a reranker)")
        docs = list(documents)
        scores = self.predict([[query, d] for d in docs], batch_size=batch_size, raw_scores=raw_scores) \
            if docs else np.empty(0, np.float32)
        order = sorted(range(len(docs)), key=lambda i: (-scores[i], i))[:top_k]
        return [dict(corpus_id=i, score=float(scores[i]), **({"text": docs[i]} if return_documents else {}))
                for i in order]

    # ---- tokenizing --------------------------------------------------------------------

    def tokenize(self, texts, *, add_special_tokens=True, truncate=True, max_length=None):
        """Tokens of a str (a dict) or a list of str (a list of dicts), as the model sees them:
        ids, tokens (vocabulary entries), type_ids, offsets ([start, end) in the text's UTF-8
        bytes; (0, 0) for [CLS] and [SEP]), truncated, invalid_utf8."""
        items, single = _texts(texts)
        ml = _optional_int("max_length", max_length, 2)
        out = [self._model.tokenize(t, None, add_special_tokens, truncate, max_length=ml, first=i)
               for i, t in enumerate(items)]
        return out[0] if single else out
