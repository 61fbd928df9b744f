/*
 * ember._ember: include/ember.h for CPython (the ember package's Python layer,
 * python/ember/, builds sentence-transformers' API on it).
 *
 * Uses the public header only. Every call into the library that tokenizes or
 * encodes runs with the GIL released; pooled vectors are written by
 * ember_encode straight into the caller's buffer (a numpy array, through the
 * buffer protocol); token embeddings stay in the library's allocation and are
 * handed out as a buffer (TokenEmbeddings), so no float is copied. A failed
 * call raises the exception its status maps to, carrying ember_last_error()
 * (per thread: read on the thread that made the call).
 *
 *   EMBER_ERR_INVALID_ARGUMENT, EMBER_ERR_NO_DEVICE  ValueError
 *   EMBER_ERR_IO (loading a model)                   FileNotFoundError
 *                                                     (PermissionError when so)
 *   EMBER_ERR_OUT_OF_MEMORY                           MemoryError
 *   any other                                         ember.EmberError
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static PyObject *EmberError; /* ember.EmberError(RuntimeError); .status: ember_status_str */

/* Python 3.11 lacks the 3.12 calls that take and put back the raised exception. */
#if PY_VERSION_HEX < 0x030C0000
static PyObject *PyErr_GetRaisedException(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type) return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}
static void PyErr_SetRaisedException(PyObject *exc) {
    if (!exc) return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}
#endif
#if PY_VERSION_HEX >= 0x030D0000
#define interpreter_finalizing() Py_IsFinalizing()
#else
#define interpreter_finalizing() _Py_IsFinalizing()
#endif

/* Set the exception for a failed call; message: ember_last_error() unless given. */
static PyObject *raise_status(ember_status st, const char *message, int loading) {
    const char *msg = message ? message : ember_last_error();
    if (!msg || !*msg) msg = ember_status_str(st);
    PyObject *type = EmberError;
    switch (st) {
    case EMBER_ERR_INVALID_ARGUMENT:
    case EMBER_ERR_NO_DEVICE: type = PyExc_ValueError; break;
    case EMBER_ERR_OUT_OF_MEMORY: type = PyExc_MemoryError; break;
    case EMBER_ERR_IO:
        if (loading) type = strstr(msg, "Permission denied") ? PyExc_PermissionError : PyExc_FileNotFoundError;
        break;
    default: break;
    }
    if (type != EmberError) {
        PyErr_SetString(type, msg);
        return NULL;
    }
    PyObject *exc = PyObject_CallFunction(EmberError, "s", msg);
    if (!exc) return NULL;
    if (PyObject_SetAttrString(exc, "status", PyUnicode_FromString(ember_status_str(st))) == 0)
        PyErr_SetObject(EmberError, exc);
    Py_DECREF(exc);
    return NULL;
}

/* ---- texts ----------------------------------------------------------------------------- */

/* A batch of Python str as UTF-8: the pointers stay valid while `refs` holds
 * the str objects (taken from the caller's sequence, which another thread
 * may change while the GIL is released). */
typedef struct {
    Py_ssize_t n;
    const char **ptr;
    ptrdiff_t *len;
    PyObject **refs;
} utf8_texts;

static void texts_free(utf8_texts *t) {
    for (Py_ssize_t i = 0; i < t->n; i++) Py_XDECREF(t->refs[i]);
    PyMem_Free(t->ptr);
    PyMem_Free(t->len);
    PyMem_Free(t->refs);
    memset(t, 0, sizeof *t);
}

/* `first` is the index of seq[0] in the user's input, for the messages. */
static int texts_from_sequence(PyObject *seq, Py_ssize_t first, utf8_texts *t) {
    memset(t, 0, sizeof *t);
    PyObject *fast = PySequence_Fast(seq, "texts must be a list or tuple of str");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > INT32_MAX) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%zd texts in one call, at most %d", n, INT32_MAX);
        return -1;
    }
    t->ptr = PyMem_Calloc(n ? (size_t)n : 1, sizeof *t->ptr);
    t->len = PyMem_Calloc(n ? (size_t)n : 1, sizeof *t->len);
    t->refs = PyMem_Calloc(n ? (size_t)n : 1, sizeof *t->refs);
    if (!t->ptr || !t->len || !t->refs) {
        Py_DECREF(fast);
        texts_free(t);
        PyErr_NoMemory();
        return -1;
    }
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = items[i];
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "sentences[%zd] is %.100s, not str", first + i, Py_TYPE(s)->tp_name);
            goto fail;
        }
        Py_ssize_t len;
        const char *p = PyUnicode_AsUTF8AndSize(s, &len);
        if (!p) {
            /* a lone surrogate: no UTF-8 for it */
            PyObject *cause = PyErr_GetRaisedException();
            PyErr_Format(PyExc_ValueError, "sentences[%zd] cannot be encoded as UTF-8 (a lone surrogate?)", first + i);
            PyObject *exc = PyErr_GetRaisedException();
            PyException_SetCause(exc, cause);
            PyErr_SetRaisedException(exc);
            goto fail;
        }
        Py_INCREF(s);
        t->refs[i] = s;
        t->ptr[i] = p;
        t->len[i] = (ptrdiff_t)len;
        t->n = i + 1;
    }
    Py_DECREF(fast);
    t->n = n;
    return 0;
fail:
    Py_DECREF(fast);
    texts_free(t);
    return -1;
}

/* ---- the model ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    ember_model *model;
    ember_model_info info;
} ModelObject;

static int parse_normalize(int normalize, ember_normalize *out) {
    switch (normalize) {
    case 0: *out = EMBER_NORMALIZE_DEFAULT; return 0;
    case 1: *out = EMBER_NORMALIZE_ON; return 0;
    case 2: *out = EMBER_NORMALIZE_OFF; return 0;
    }
    PyErr_Format(PyExc_ValueError, "normalize must be 0 (the model's), 1 (on) or 2 (off), got %d", normalize);
    return -1;
}

static int model_ready(ModelObject *self) {
    if (self->model) return 0;
    PyErr_SetString(PyExc_RuntimeError, "the model is not loaded");
    return -1;
}

static int Model_init(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"model_dir", "device", "dtype", "threads", "max_length", "max_batch_tokens", NULL};
    PyObject *dir_obj;
    const char *device = "auto", *dtype = "fp32";
    int threads = 0, max_length = 0, max_batch_tokens = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O&|ssiii", kwlist, PyUnicode_FSConverter, &dir_obj, &device, &dtype,
                                     &threads, &max_length, &max_batch_tokens))
        return -1;
    if (self->model) {
        Py_DECREF(dir_obj);
        PyErr_SetString(PyExc_RuntimeError, "the model is already loaded");
        return -1;
    }
    ember_model_params p = ember_model_default_params();
    ember_status st = ember_device_parse(device, &p.device, &p.device_index);
    if (st == EMBER_OK) st = ember_dtype_parse(dtype, &p.dtype);
    if (st != EMBER_OK) {
        Py_DECREF(dir_obj);
        raise_status(st, NULL, 0);
        return -1;
    }
    if (threads < 0 || max_length < 0 || max_batch_tokens < 0) {
        Py_DECREF(dir_obj);
        PyErr_SetString(PyExc_ValueError, "threads, max_length and max_batch_tokens must be >= 0 (0: the default)");
        return -1;
    }
    p.n_threads = threads;
    p.max_length = max_length;
    p.max_batch_tokens = max_batch_tokens;
    const char *dir = PyBytes_AS_STRING(dir_obj);
    ember_model *m = NULL;
    char message[1024] = "";
    Py_BEGIN_ALLOW_THREADS
    st = ember_model_load(dir, &p, &m);
    if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
    Py_END_ALLOW_THREADS
    Py_DECREF(dir_obj);
    if (st != EMBER_OK) {
        raise_status(st, message, 1);
        return -1;
    }
    if ((st = ember_model_get_info(m, &self->info)) != EMBER_OK) {
        raise_status(st, NULL, 0);
        ember_model_free(m);
        return -1;
    }
    self->model = m;
    return 0;
}

static void Model_dealloc(ModelObject *self) {
    if (self->model) {
        ember_model *m = self->model;
        self->model = NULL;
        /* a CUDA model's free synchronises the device: let other threads run
         * meanwhile, unless the interpreter is shutting down */
        if (interpreter_finalizing()) {
            ember_model_free(m);
        } else {
            Py_BEGIN_ALLOW_THREADS
            ember_model_free(m);
            Py_END_ALLOW_THREADS
        }
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Model_info(ModelObject *self, PyObject *unused) {
    if (model_ready(self)) return NULL;
    const ember_model_info *i = &self->info;
    PyObject *d = Py_BuildValue(
        "{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:s,s:O,s:O,s:s,s:i,s:s,s:s,s:O,s:i,s:s}", "name", i->name, "dir",
        i->dir,
        "architecture", i->architecture, "dim", i->dim, "n_layers", i->n_layers, "n_heads", i->n_heads,
        "intermediate_size", i->intermediate_size, "vocab_size", i->vocab_size, "max_length", i->max_length,
        "max_batch_tokens", i->max_batch_tokens, "pooling", ember_pooling_str(i->pooling), "normalize",
        i->normalize ? Py_True : Py_False, "lowercase", i->lowercase ? Py_True : Py_False, "device",
        i->device == EMBER_DEVICE_CUDA ? "cuda" : "cpu", "device_index", i->device_index, "dtype",
        ember_dtype_str(i->dtype), "device_name", i->device_name, "batch_invariant",
        i->batch_invariant ? Py_True : Py_False, "hidden_size", i->hidden_size, "modules", i->modules);
    if (!d) return NULL;
    /* prompts: name -> text, in config_sentence_transformers.json's order (the names come
     * ", "-separated in the info, the texts from ember_resolve_prompt) */
    PyObject *prompts = PyDict_New();
    int bad = !prompts;
    for (const char *p = i->prompts; !bad && *p;) {
        const char *e = strstr(p, ", ");
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        const char *text = "";
        PyObject *v = ember_resolve_prompt(self->model, name, NULL, &text, NULL) == EMBER_OK
                          ? PyUnicode_FromString(text) : NULL;
        bad = !v || PyDict_SetItemString(prompts, name, v) < 0;
        Py_XDECREF(v);
        p += n + (e ? 2 : 0);
    }
    PyObject *def = i->default_prompt_name ? PyUnicode_FromString(i->default_prompt_name) : Py_NewRef(Py_None);
    if (bad || !def || PyDict_SetItemString(d, "prompts", prompts) < 0 ||
        PyDict_SetItemString(d, "default_prompt_name", def) < 0 ||
        PyDict_SetItemString(d, "include_prompt", i->include_prompt ? Py_True : Py_False) < 0) {
        Py_XDECREF(prompts);
        Py_XDECREF(def);
        Py_DECREF(d);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "cannot read the model's prompts");
        return NULL;
    }
    Py_DECREF(prompts);
    Py_DECREF(def);
    return d;
}

/* info() with a cross-encoder's labels: num_labels and labels (a list). */
static PyObject *Model_info_all(ModelObject *self, PyObject *unused) {
    PyObject *d = Model_info(self, unused);
    if (!d) return NULL;
    const ember_model_info *i = &self->info;
    PyObject *n = PyLong_FromLong(i->num_labels), *labels = PyList_New(i->num_labels);
    int bad = !n || !labels;
    for (int32_t k = 0; !bad && k < i->num_labels; k++) {
        PyObject *s = PyUnicode_FromString(i->labels[k]);
        if (!s) bad = 1;
        else PyList_SET_ITEM(labels, k, s);
    }
    if (bad || PyDict_SetItemString(d, "num_labels", n) || PyDict_SetItemString(d, "labels", labels)) {
        Py_XDECREF(n);
        Py_XDECREF(labels);
        Py_DECREF(d);
        return NULL;
    }
    Py_DECREF(n);
    Py_DECREF(labels);
    return d;
}

/* score_pairs(queries, texts, out, raw=False): a cross-encoder's scores of
 * the pairs (queries[i], texts[i]) (texts None: queries alone) into out, a
 * writable C-contiguous float32 buffer of len(queries) * num_labels items. */
static PyObject *Model_score_pairs(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"queries", "texts", "out", "raw", NULL};
    PyObject *q_obj, *t_obj, *out_obj;
    int raw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|p", kwlist, &q_obj, &t_obj, &out_obj, &raw)) return NULL;
    if (model_ready(self)) return NULL;
    utf8_texts q, t = {0};
    if (texts_from_sequence(q_obj, 0, &q)) return NULL;
    if (t_obj != Py_None && texts_from_sequence(t_obj, 0, &t)) {
        texts_free(&q);
        return NULL;
    }
    PyObject *result = NULL;
    Py_buffer out;
    if (t_obj != Py_None && t.n != q.n) {
        PyErr_Format(PyExc_ValueError, "%zd queries but %zd texts", q.n, t.n);
    } else if (!PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)) {
        size_t want = (size_t)q.n * (size_t)self->info.num_labels;
        if (out.itemsize != sizeof(float) || !out.format || strcmp(out.format, "f") != 0) {
            PyErr_SetString(PyExc_TypeError, "out must hold float32 (format 'f')");
        } else if ((size_t)out.len != want * sizeof(float)) {
            PyErr_Format(PyExc_ValueError, "out holds %zd floats, %zu needed", out.len / out.itemsize, want);
        } else {
            ember_score_params sp = ember_score_default_params();
            sp.raw = raw;
            ember_status st = EMBER_OK;
            char message[1024] = "";
            Py_BEGIN_ALLOW_THREADS
            st = ember_score_pairs(self->model, q.ptr, t_obj == Py_None ? NULL : t.ptr, (int32_t)q.n, &sp, out.buf,
                                   NULL);
            if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
            Py_END_ALLOW_THREADS
            if (st != EMBER_OK) raise_status(st, message, 0);
            else result = Py_NewRef(Py_None);
        }
        PyBuffer_Release(&out);
    }
    texts_free(&q);
    texts_free(&t);
    return result;
}

static int encode_params(const char *pooling, int normalize, ember_encode_params *p) {
    *p = ember_encode_default_params();
    if (pooling) {
        ember_status st = ember_pooling_parse(pooling, &p->pooling);
        if (st != EMBER_OK) {
            raise_status(st, NULL, 0);
            return -1;
        }
    }
    return parse_normalize(normalize, &p->normalize);
}

/* encode(texts, out, first=0, pooling=None, normalize=0, prompt_name=None,
 * prompt=None): the pooled vectors of texts into out, a writable C-contiguous
 * float32 buffer of len(texts) * dim items (a numpy array (n, dim), or a
 * slice of rows); the prompt as ember_encode_params says. */
static PyObject *Model_encode(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"texts", "out", "first", "pooling", "normalize", "prompt_name", "prompt", NULL};
    PyObject *texts_obj, *out_obj;
    Py_ssize_t first = 0;
    const char *pooling = NULL, *prompt_name = NULL, *prompt = NULL;
    int normalize = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|nzizz", kwlist, &texts_obj, &out_obj, &first, &pooling,
                                     &normalize, &prompt_name, &prompt))
        return NULL;
    if (model_ready(self)) return NULL;
    ember_encode_params ep;
    if (encode_params(pooling, normalize, &ep)) return NULL;
    ep.prompt_name = prompt_name; /* the caller's str objects hold these for the call */
    ep.prompt = prompt;
    utf8_texts t;
    if (texts_from_sequence(texts_obj, first, &t)) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)) {
        texts_free(&t);
        return NULL;
    }
    PyObject *result = NULL;
    size_t want = (size_t)t.n * (size_t)self->info.dim;
    if (out.itemsize != sizeof(float) || !out.format || strcmp(out.format, "f") != 0) {
        PyErr_Format(PyExc_TypeError, "out must hold float32 (format 'f'), got format '%s'",
                     out.format ? out.format : "B");
    } else if ((size_t)out.len != want * sizeof(float)) {
        PyErr_Format(PyExc_ValueError, "out holds %zd floats, %zu needed (%zd texts x %d)", out.len / out.itemsize,
                     want, t.n, (int)self->info.dim);
    } else {
        ember_status st = EMBER_OK;
        char message[1024] = "";
        if (t.n > 0) {
            Py_BEGIN_ALLOW_THREADS
            st = ember_encode(self->model, t.ptr, t.len, (int32_t)t.n, &ep, out.buf, NULL);
            if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
            Py_END_ALLOW_THREADS
        } else { /* no texts: the prompt asked for is still checked */
            const char *text;
            st = ember_resolve_prompt(self->model, ep.prompt_name, ep.prompt, &text, NULL);
            if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
        }
        if (st != EMBER_OK) raise_status(st, message, 0);
        else result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&out);
    texts_free(&t);
    return result;
}

/* ---- token embeddings: the library's allocation, exported as a buffer ------------------ */

typedef struct {
    PyObject_HEAD
    ember_token_embeddings *emb;
    Py_ssize_t shape[2], strides[2];
} TokenEmbeddingsObject;

static PyTypeObject TokenEmbeddingsType;

static void TokenEmbeddings_dealloc(TokenEmbeddingsObject *self) {
    ember_token_embeddings_free(self->emb);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int TokenEmbeddings_getbuffer(TokenEmbeddingsObject *self, Py_buffer *view, int flags) {
    static float empty;
    void *buf = self->emb && self->emb->data ? (void *)self->emb->data : (void *)&empty;
    Py_ssize_t len = self->shape[0] * self->shape[1] * (Py_ssize_t)sizeof(float);
    if (PyBuffer_FillInfo(view, (PyObject *)self, buf, len, 0, flags)) return -1;
    view->itemsize = sizeof(float);
    view->format = (flags & PyBUF_FORMAT) ? "f" : NULL;
    if (flags & PyBUF_ND) {
        view->ndim = 2;
        view->shape = self->shape;
        view->strides = (flags & PyBUF_STRIDES) ? self->strides : NULL;
    }
    return 0;
}

static PyBufferProcs TokenEmbeddings_as_buffer = {(getbufferproc)TokenEmbeddings_getbuffer, NULL};

static PyTypeObject TokenEmbeddingsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ember._ember.TokenEmbeddings",
    .tp_basicsize = sizeof(TokenEmbeddingsObject),
    .tp_dealloc = (destructor)TokenEmbeddings_dealloc,
    .tp_as_buffer = &TokenEmbeddings_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Every token's last hidden state for a batch of texts: a float32 buffer (tokens, dim), "
              "owned by the library.",
};

/* encode_tokens(texts, first=0) -> (TokenEmbeddings, offsets): rows
 * offsets[i]:offsets[i+1] of the buffer are text i's tokens, [CLS] and [SEP]
 * included. */
static PyObject *Model_encode_tokens(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"texts", "first", NULL};
    PyObject *texts_obj;
    Py_ssize_t first = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|n", kwlist, &texts_obj, &first)) return NULL;
    if (model_ready(self)) return NULL;
    utf8_texts t;
    if (texts_from_sequence(texts_obj, first, &t)) return NULL;
    ember_token_embeddings *emb = NULL;
    ember_status st;
    char message[1024] = "";
    Py_BEGIN_ALLOW_THREADS
    st = ember_encode_tokens(self->model, t.ptr, t.len, (int32_t)t.n, NULL, &emb, NULL);
    if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
    Py_END_ALLOW_THREADS
    texts_free(&t);
    if (st != EMBER_OK) return raise_status(st, message, 0);
    TokenEmbeddingsObject *te = PyObject_New(TokenEmbeddingsObject, &TokenEmbeddingsType);
    if (!te) {
        ember_token_embeddings_free(emb);
        return NULL;
    }
    te->emb = emb;
    te->shape[0] = emb->n_tokens;
    te->shape[1] = emb->dim;
    te->strides[0] = (Py_ssize_t)emb->dim * (Py_ssize_t)sizeof(float);
    te->strides[1] = sizeof(float);
    PyObject *offsets = PyList_New(emb->n_texts + 1);
    if (!offsets) {
        Py_DECREF(te);
        return NULL;
    }
    for (int32_t i = 0; i <= emb->n_texts; i++) {
        PyObject *v = PyLong_FromLong(emb->offsets[i]);
        if (!v) {
            Py_DECREF(offsets);
            Py_DECREF(te);
            return NULL;
        }
        PyList_SET_ITEM(offsets, i, v);
    }
    return Py_BuildValue("(NN)", (PyObject *)te, offsets);
}

/* ---- tokenizing ------------------------------------------------------------------------- */

static PyObject *tokens_to_python(ModelObject *self, const ember_token *tk, int32_t n, const ember_text_stats *stats) {
    PyObject *ids = PyList_New(n), *type_ids = PyList_New(n), *tokens = PyList_New(n), *offsets = PyList_New(n);
    if (!ids || !type_ids || !tokens || !offsets) goto fail;
    for (int32_t i = 0; i < n; i++) {
        const char *text = ember_token_text(self->model, tk[i].id);
        PyObject *id = PyLong_FromLong(tk[i].id), *ty = PyLong_FromLong(tk[i].type_id);
        PyObject *s = PyUnicode_DecodeUTF8(text ? text : "", text ? (Py_ssize_t)strlen(text) : 0, "replace");
        PyObject *off = Py_BuildValue("(ii)", tk[i].start, tk[i].end);
        if (!id || !ty || !s || !off) {
            Py_XDECREF(id), Py_XDECREF(ty), Py_XDECREF(s), Py_XDECREF(off);
            goto fail;
        }
        PyList_SET_ITEM(ids, i, id);
        PyList_SET_ITEM(type_ids, i, ty);
        PyList_SET_ITEM(tokens, i, s);
        PyList_SET_ITEM(offsets, i, off);
    }
    return Py_BuildValue("{s:N,s:N,s:N,s:N,s:O,s:i}", "ids", ids, "tokens", tokens, "type_ids", type_ids, "offsets",
                         offsets, "truncated", stats->truncated ? Py_True : Py_False, "invalid_utf8",
                         stats->invalid_utf8);
fail:
    Py_XDECREF(ids), Py_XDECREF(type_ids), Py_XDECREF(tokens), Py_XDECREF(offsets);
    return NULL;
}

/* tokenize(text, pair=None, add_special_tokens=True, truncate=True, max_length=0, first=0) -> dict:
 * ids, tokens, type_ids, byte offsets [start, end) into the UTF-8 text. */
static PyObject *Model_tokenize(ModelObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"text", "pair", "add_special_tokens", "truncate", "max_length", "first", NULL};
    PyObject *text_obj, *pair_obj = Py_None;
    int add_special = 1, truncate = 1, max_length = 0;
    Py_ssize_t first = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|Opp$in", kwlist, &text_obj, &pair_obj, &add_special, &truncate,
                                     &max_length, &first))
        return NULL;
    if (model_ready(self)) return NULL;
    if (max_length < 0) {
        PyErr_SetString(PyExc_ValueError, "max_length must be >= 0 (0: the model's)");
        return NULL;
    }
    PyObject *both = pair_obj == Py_None ? PyTuple_Pack(1, text_obj) : PyTuple_Pack(2, text_obj, pair_obj);
    if (!both) return NULL;
    utf8_texts t;
    int bad = texts_from_sequence(both, first, &t);
    Py_DECREF(both);
    if (bad) return NULL;
    ember_tokenize_params p = ember_tokenize_default_params();
    p.add_special_tokens = add_special;
    p.truncate = truncate;
    p.max_length = max_length;
    ember_token stack[512], *tk = stack;
    int32_t cap = 512, n = 0;
    ember_text_stats stats;
    ember_status st;
    char message[1024] = "";
    Py_BEGIN_ALLOW_THREADS
    for (;;) {
        st = ember_tokenize(self->model, t.ptr[0], t.len[0], t.n > 1 ? t.ptr[1] : NULL, t.n > 1 ? t.len[1] : 0, &p, tk,
                            cap, &n, &stats);
        if (st != EMBER_ERR_BUFFER_TOO_SMALL || n <= cap) break;
        if (tk != stack) free(tk);
        cap = n;
        if (!(tk = malloc((size_t)cap * sizeof *tk))) {
            st = EMBER_ERR_OUT_OF_MEMORY;
            snprintf(message, sizeof message, "out of memory for %d tokens", cap);
            break;
        }
    }
    if (st != EMBER_OK && !message[0]) snprintf(message, sizeof message, "%s", ember_last_error());
    Py_END_ALLOW_THREADS
    texts_free(&t);
    PyObject *result = st == EMBER_OK ? tokens_to_python(self, tk, n, &stats) : raise_status(st, message, 0);
    if (tk != stack) free(tk);
    return result;
}

static PyMethodDef Model_methods[] = {
    {"info", (PyCFunction)Model_info_all, METH_NOARGS, "The model as ember reads it (ember_model_info), as a dict."},
    {"score_pairs", (PyCFunction)(void (*)(void))Model_score_pairs, METH_VARARGS | METH_KEYWORDS,
     "score_pairs(queries, texts, out, raw=False): a cross-encoder's scores into out (float32, n x num_labels)."},
    {"encode", (PyCFunction)(void (*)(void))Model_encode, METH_VARARGS | METH_KEYWORDS,
     "encode(texts, out, first=0, pooling=None, normalize=0): pooled vectors into out (float32, len(texts) x dim)."},
    {"encode_tokens", (PyCFunction)(void (*)(void))Model_encode_tokens, METH_VARARGS | METH_KEYWORDS,
     "encode_tokens(texts, first=0) -> (TokenEmbeddings, offsets)."},
    {"tokenize", (PyCFunction)(void (*)(void))Model_tokenize, METH_VARARGS | METH_KEYWORDS,
     "tokenize(text, pair=None, add_special_tokens=True, truncate=True, *, max_length=0, first=0) -> dict."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ember._ember.Model",
    .tp_basicsize = sizeof(ModelObject),
    .tp_dealloc = (destructor)Model_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Model(model_dir, device='auto', dtype='fp32', threads=0, max_length=0, max_batch_tokens=0): "
              "ember_model_load.",
    .tp_methods = Model_methods,
    .tp_init = (initproc)Model_init,
    .tp_new = PyType_GenericNew,
};

/* ---- the library's log, into Python's logging ("ember") -------------------------------- */

static PyObject *log_function; /* logging.getLogger("ember").log */

static void log_to_python(ember_log_level level, const char *message, void *user) {
    (void)user;
    if (!Py_IsInitialized() || interpreter_finalizing() || !log_function) return;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *pending = PyErr_GetRaisedException(); /* a dealloc may log while an exception is set */
    static const int levels[] = {10, 20, 30, 40};   /* logging.DEBUG .. logging.ERROR */
    int lv = level >= EMBER_LOG_DEBUG && level <= EMBER_LOG_ERROR ? levels[level] : 20;
    PyObject *r = PyObject_CallFunction(log_function, "is", lv, message);
    if (!r) PyErr_Clear();
    Py_XDECREF(r);
    PyErr_SetRaisedException(pending);
    PyGILState_Release(g);
}

/* ---- search ------------------------------------------------------------------------------ */

/* A float32 C-contiguous 2-D buffer (rows x dim), for reading. */
static int float_matrix(PyObject *obj, const char *name, Py_buffer *b) {
    if (PyObject_GetBuffer(obj, b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND)) return -1;
    if (b->itemsize != sizeof(float) || !b->format || strcmp(b->format, "f") != 0 || b->ndim != 2) {
        PyErr_Format(PyExc_TypeError, "%s must be a 2-D float32 C-contiguous array", name);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

/* A writable C-contiguous buffer of n items of itemsize bytes and format fmt. */
static int out_vector(PyObject *obj, const char *name, const char *fmt, Py_ssize_t itemsize, Py_ssize_t n,
                      Py_buffer *b) {
    if (PyObject_GetBuffer(obj, b, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)) return -1;
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    /* numpy spells int64 'l' where long has 64 bits */
    int same = strcmp(f, fmt) == 0 || (strcmp(fmt, "q") == 0 && strcmp(f, "l") == 0 && sizeof(long) == 8);
    if (b->itemsize != itemsize || !same || b->len != n * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s must be a writable array of %zd items of format '%s'", name, n, fmt);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

/* search(corpus, queries, k, threads, rescore, rows_out, scores_out, found_out):
 * ember_search over corpus (a path: shards with their manifest, or a .npy;
 * or a float32 matrix, wrapped without a copy) for queries (n x dim float32);
 * rows_out int64 (n*k), scores_out float32 (n*k), found_out int32 (n). */
static PyObject *search(PyObject *module, PyObject *args, PyObject *kwds) {
    (void)module;
    static char *kwlist[] = {"corpus", "queries", "k", "threads", "rescore", "rows_out", "scores_out", "found_out",
                             NULL};
    PyObject *corpus_obj, *queries_obj, *rows_obj, *scores_obj, *found_obj;
    int k, threads, rescore;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOiiiOOO", kwlist, &corpus_obj, &queries_obj, &k, &threads,
                                     &rescore, &rows_obj, &scores_obj, &found_obj))
        return NULL;
    if (k < 1 || threads < 0 || rescore < 0) {
        PyErr_Format(PyExc_ValueError, "k must be >= 1, threads and rescore >= 0 (got %d, %d, %d)", k, threads,
                     rescore);
        return NULL;
    }
    Py_buffer corpus = {0}, q = {0}, rows = {0}, scores = {0}, found = {0};
    PyObject *path = NULL, *result = NULL;
    int have_corpus = 0, have_q = 0, have_rows = 0, have_scores = 0, have_found = 0;
    if (PyUnicode_Check(corpus_obj) || PyBytes_Check(corpus_obj)) {
        if (!PyUnicode_FSConverter(corpus_obj, &path)) return NULL;
    } else {
        if (float_matrix(corpus_obj, "corpus", &corpus)) return NULL;
        have_corpus = 1;
    }
    if (float_matrix(queries_obj, "queries", &q)) goto done;
    have_q = 1;
    Py_ssize_t n = q.shape[0];
    if (n > INT32_MAX || (Py_ssize_t)k * n > PY_SSIZE_T_MAX / 8) {
        PyErr_SetString(PyExc_ValueError, "too many queries");
        goto done;
    }
    if (out_vector(rows_obj, "rows_out", "q", 8, n * k, &rows)) goto done;
    have_rows = 1;
    if (out_vector(scores_obj, "scores_out", "f", 4, n * k, &scores)) goto done;
    have_scores = 1;
    if (out_vector(found_obj, "found_out", "i", 4, n, &found)) goto done;
    have_found = 1;
    if (n == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    ember_status st;
    char message[1024] = "";
    ember_hit *hits = PyMem_RawMalloc((size_t)n * (size_t)k * sizeof *hits);
    if (!hits) {
        PyErr_NoMemory();
        goto done;
    }
    const char *path_str = path ? PyBytes_AS_STRING(path) : NULL;
    Py_BEGIN_ALLOW_THREADS
    ember_index *ix = NULL;
    st = path_str ? ember_index_open(path_str, &ix)
                  : ember_index_wrap(corpus.buf, (int64_t)corpus.shape[0], (int32_t)corpus.shape[1], &ix);
    if (st == EMBER_OK) {
        ember_search_params sp = ember_search_default_params();
        sp.k = k;
        sp.n_threads = threads;
        sp.rescore = rescore;
        st = ember_search(ix, q.buf, (int32_t)n, (int32_t)q.shape[1], &sp, hits, found.buf);
    }
    if (st != EMBER_OK) snprintf(message, sizeof message, "%s", ember_last_error());
    ember_index_free(ix);
    if (st == EMBER_OK) {
        int64_t *r = rows.buf;
        float *sc = scores.buf;
        for (Py_ssize_t i = 0; i < n * k; i++) {
            r[i] = hits[i].row;
            sc[i] = hits[i].score;
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(hits);
    if (st != EMBER_OK) raise_status(st, message, path_str != NULL);
    else result = Py_NewRef(Py_None);
done:
    if (have_found) PyBuffer_Release(&found);
    if (have_scores) PyBuffer_Release(&scores);
    if (have_rows) PyBuffer_Release(&rows);
    if (have_q) PyBuffer_Release(&q);
    if (have_corpus) PyBuffer_Release(&corpus);
    Py_XDECREF(path);
    return result;
}

/* ---- the module -------------------------------------------------------------------------- */

static PyObject *cuda_device_count(PyObject *module, PyObject *unused) {
    int32_t n;
    Py_BEGIN_ALLOW_THREADS
    n = ember_cuda_device_count();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(n);
}

static PyMethodDef module_methods[] = {
    {"cuda_device_count", cuda_device_count, METH_NOARGS,
     "How many CUDA devices ember sees; -1 when built without CUDA."},
    {"search", (PyCFunction)(void (*)(void))search, METH_VARARGS | METH_KEYWORDS,
     "ember_search: the best k corpus rows of each query (see ember.search)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_ember", "ember's C library (include/ember.h) for Python.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__ember(void);
PyMODINIT_FUNC PyInit__ember(void) {
    if (PyType_Ready(&ModelType) < 0 || PyType_Ready(&TokenEmbeddingsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m) return NULL;
    EmberError = PyErr_NewExceptionWithDoc("ember.EmberError",
                                           "An error of the ember library; .status names its kind (ember_status_str).",
                                           PyExc_RuntimeError, NULL);
    if (!EmberError || PyModule_AddObjectRef(m, "EmberError", EmberError) < 0 ||
        PyModule_AddObjectRef(m, "Model", (PyObject *)&ModelType) < 0 ||
        PyModule_AddObjectRef(m, "TokenEmbeddings", (PyObject *)&TokenEmbeddingsType) < 0 ||
        PyModule_AddStringConstant(m, "EMBER_VERSION", EMBER_VERSION) < 0)
        goto fail;
    PyObject *logging = PyImport_ImportModule("logging");
    PyObject *logger = logging ? PyObject_CallMethod(logging, "getLogger", "s", "ember") : NULL;
    Py_XDECREF(logging);
    if (!logger) goto fail;
    log_function = PyObject_GetAttrString(logger, "log");
    Py_DECREF(logger);
    if (!log_function) goto fail;
    ember_log_set(log_to_python, NULL);
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
