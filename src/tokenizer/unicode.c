#include "unicode.h"

#include <pthread.h>
#include <utf8proc.h>

/*
 * tokenizers classifies characters with its own Unicode tables, which are
 * older than utf8proc's: characters given a category after those tables
 * were made are "unassigned" there, so tokenizers neither removes nor
 * isolates them. These ranges restore tokenizers' view where utf8proc's
 * newer data differs. They are checked, code point by code point, against
 * tests/data/tokenizer/codepoints.tsv (dumped from tokenizers itself by
 * tools/dump_tokenizer_unicode.py) in tests/test_unicode.c.
 */
typedef struct {
    int32_t first, last;
    uint8_t set, clear; /* classes tokenizers gives / does not give these code points */
} class_exception;

typedef struct {
    int32_t cp;
    int n;
    int32_t to[3];
} lower_exception;

typedef struct {
    int32_t cp;
    int n;
    int32_t to[4];
} strip_exception;

#ifdef EMBER_UNICODE_NO_EXCEPTIONS /* for tools/unicode_exceptions.c, which makes the tables */
static const class_exception class_exceptions[] = {{-1, -1, 0, 0}};
static const lower_exception lower_exceptions[] = {{-1, 0, {0, 0, 0}}};
static const strip_exception strip_exceptions[] = {{-1, 0, {0, 0, 0, 0}}};
#else
#include "unicode_exceptions.inc"
#endif

int unicode_strip_exception(int32_t cp, int32_t *out) {
    size_t lo = 0, hi = sizeof strip_exceptions / sizeof strip_exceptions[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < strip_exceptions[mid].cp) hi = mid;
        else if (cp > strip_exceptions[mid].cp) lo = mid + 1;
        else {
            for (int i = 0; i < strip_exceptions[mid].n; i++) out[i] = strip_exceptions[mid].to[i];
            return strip_exceptions[mid].n;
        }
    }
    return -1;
}

/* Rust's char::is_whitespace (the White_Space property). */
static int is_white_space(int32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* tokenizers' is_chinese_char. It differs from the Python BertTokenizer's
 * _is_chinese_char in one range: extension E starts at U+2B920 here (Python:
 * U+2B820), and extensions F and G are not included in either. */
static int is_cjk(int32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static uint8_t compute_class(int32_t cp) {
    utf8proc_category_t cat = utf8proc_category(cp);
    uint8_t c = 0;
    int ws = is_white_space(cp) || cp == '\t' || cp == '\n' || cp == '\r';
    int control = cp != '\t' && cp != '\n' && cp != '\r' &&
                  (cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                   cat == UTF8PROC_CATEGORY_CO);
    if (cp == 0 || cp == 0xFFFD || control) c |= UC_REMOVE;
    else if (ws && cp != ' ') c |= UC_SPACE;
    if (is_cjk(cp)) c |= UC_CJK;
    if (is_white_space(cp)) c |= UC_WS;
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126) ||
        (cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO))
        c |= UC_PUNCT;
    if (cat == UTF8PROC_CATEGORY_MN) c |= UC_MN;
    size_t lo = 0, hi = sizeof class_exceptions / sizeof class_exceptions[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < class_exceptions[mid].first) hi = mid;
        else if (cp > class_exceptions[mid].last) lo = mid + 1;
        else {
            c = (uint8_t)((c & ~class_exceptions[mid].clear) | class_exceptions[mid].set);
            break;
        }
    }
    return c;
}

static uint8_t bmp_class[0x10000];
static pthread_once_t bmp_once = PTHREAD_ONCE_INIT;

static void bmp_init(void) {
    for (int32_t cp = 0; cp < 0x10000; cp++) bmp_class[cp] = compute_class(cp);
}

uint8_t unicode_class(int32_t cp) {
    if (cp < 0x10000) {
        pthread_once(&bmp_once, bmp_init);
        return bmp_class[cp];
    }
    return compute_class(cp);
}

int unicode_decompose(int32_t cp, int32_t *out) {
    int last_boundclass = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(cp, out, 8, UTF8PROC_DECOMPOSE, &last_boundclass);
    if (n < 1 || n > 8) {
        out[0] = cp;
        return 1;
    }
    return (int)n;
}

int unicode_combining_class(int32_t cp) {
    return utf8proc_get_property(cp)->combining_class;
}

int unicode_lowercase(int32_t cp, int32_t *out) {
    /* where Rust's char::to_lowercase differs from utf8proc's simple mapping
     * (U+0130's full mapping, characters newer than utf8proc's tables) */
    size_t lo = 0, hi = sizeof lower_exceptions / sizeof lower_exceptions[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < lower_exceptions[mid].cp) hi = mid;
        else if (cp > lower_exceptions[mid].cp) lo = mid + 1;
        else {
            for (int i = 0; i < lower_exceptions[mid].n; i++) out[i] = lower_exceptions[mid].to[i];
            return lower_exceptions[mid].n;
        }
    }
    out[0] = utf8proc_tolower(cp);
    return 1;
}

int unicode_is_letter(int32_t cp) {
    if (cp <= 0) return 0;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

int utf8_decode(const uint8_t *s, size_t n, int32_t *cp, int *invalid) {
    uint8_t b0 = s[0];
    *invalid = 0;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    int32_t v;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        v = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        v = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        v = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        *invalid = 1;
        return 1;
    }
    size_t i = 1;
    for (; i <= (size_t)need; i++) {
        if (i >= n) break;
        uint8_t b = s[i];
        if (b < lo || b > hi) break;
        lo = 0x80;
        hi = 0xBF;
        v = (v << 6) | (b & 0x3F);
    }
    if (i <= (size_t)need) {
        *cp = 0xFFFD;
        *invalid = 1;
        return (int)i;
    }
    *cp = v;
    return need + 1;
}

int utf8_encode(int32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
