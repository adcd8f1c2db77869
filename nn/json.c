/*
 * json.c -- a strict JSON (RFC 8259) reader, written for the headers of
 * safetensors files (see json_internal.h for what "strict" covers).
 *
 * A recursive-descent parser over a byte range that is not NUL
 * terminated. Every read is bounds checked, the nesting depth is capped,
 * every allocation is checked, and a half-built tree is freed on any
 * error. Duplicate keys are found by sorting each object's keys once it is
 * complete (O(n log n), so a header with many tensors stays cheap).
 * Messages name the problem and its line and column, as serde_json (the
 * reference safetensors reader's parser) does.
 *
 * Left out on purpose: writing (safetensors.c writes its compact header
 * directly), number values other than unsigned integers, and any
 * extension to the grammar.
 */
#include "json_internal.h"

#include "module_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t errsize;
    cg_status nomem; /* CG_ERR_NOMEM once an allocation failed */
} parser;

/* Records a syntax error at byte `at` (only the first one counts). */
static cg_status fail_at(parser *p, size_t at, const char *what)
{
    if (p->err && p->errsize && !p->err[0]) {
        size_t line = 1, col = 1;
        for (size_t i = 0; i < at && i < p->len; i++) {
            if (p->s[i] == '\n') {
                line++;
                col = 1;
            } else if ((p->s[i] & 0xC0) != 0x80) {
                col++; /* count characters, not UTF-8 continuation bytes */
            }
        }
        snprintf(p->err, p->errsize, "%s at line %zu column %zu", what, line,
                 col);
    }
    return CG_ERR_VALUE;
}

static cg_status fail(parser *p, const char *what)
{
    return fail_at(p, p->pos, what);
}

static cg_status nomem(parser *p, size_t bytes)
{
    p->nomem = CG_ERR_NOMEM;
    return cg__nn_nomem(bytes);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static void json_clear(cg__json *v)
{
    if (!v)
        return;
    cg_free(v->str);
    for (int i = 0; i < v->n; i++) {
        json_clear(&v->items[i]);
        if (v->keys)
            cg_free(v->keys[i]);
    }
    cg_free(v->items);
    cg_free(v->keys);
    cg_free(v->key_lens);
    memset(v, 0, sizeof *v);
}

void cg__json_free(cg__json *v)
{
    json_clear(v);
    cg_free(v);
}

const char *cg__json_type_name(cg__json_type t)
{
    static const char *const names[CG__JSON_TYPE_COUNT] = {
        "null", "bool", "number", "string", "array", "object"};
    return (int)t >= 0 && t < CG__JSON_TYPE_COUNT ? names[t] : "unknown";
}

const cg__json *cg__json_get(const cg__json *v, const char *key)
{
    if (!v || v->type != CG__JSON_OBJECT || !key)
        return NULL;
    size_t n = strlen(key);
    for (int i = 0; i < v->n; i++)
        if (v->key_lens[i] == n && memcmp(v->keys[i], key, n) == 0)
            return &v->items[i];
    return NULL;
}

/* ---- literals and numbers -------------------------------------------- */

static cg_status parse_word(parser *p, const char *word, cg__json *v,
                            cg__json_type type, bool b)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "expected value");
    p->pos += n;
    v->type = type;
    v->boolean = b;
    return CG_OK;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static cg_status parse_number(parser *p, cg__json *v)
{
    size_t start = p->pos;
    bool neg = false, integral = true, overflow = false;
    uint64_t u = 0;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->len || !is_digit(p->s[p->pos]))
        return fail(p, neg ? "invalid number" : "expected value");
    if (p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && is_digit(p->s[p->pos]))
            return fail(p, "invalid number: leading zero");
    } else {
        while (p->pos < p->len && is_digit(p->s[p->pos])) {
            unsigned d = (unsigned)(p->s[p->pos] - '0');
            if (u > (UINT64_MAX - d) / 10)
                overflow = true;
            else
                u = u * 10 + d;
            p->pos++;
        }
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = false;
        p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number: expected digit after '.'");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->len || !is_digit(p->s[p->pos]))
            return fail(p, "invalid number: expected digit in exponent");
        while (p->pos < p->len && is_digit(p->s[p->pos]))
            p->pos++;
    }
    v->type = CG__JSON_NUMBER;
    v->pos = start;
    v->is_uint = !neg && integral && !overflow;
    v->uint_val = v->is_uint ? u : 0;
    return CG_OK;
}

/* ---- strings ------------------------------------------------------------ */

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p->pos (after "\u"). */
static cg_status read_hex4(parser *p, unsigned *out)
{
    if (p->len - p->pos < 4)
        return fail(p, "EOF while parsing a string");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_val(p->s[p->pos + (size_t)i]);
        if (h < 0)
            return fail_at(p, p->pos + (size_t)i, "invalid escape");
        v = v * 16 + (unsigned)h;
    }
    p->pos += 4;
    *out = v;
    return CG_OK;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF rejected). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4, cp = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

bool cg__utf8_valid(const char *s, size_t n, size_t *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k) {
            if (bad)
                *bad = i;
            return false;
        }
        i += k;
    }
    return true;
}

static size_t put_utf8(unsigned char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string starting at the opening quote. The decoded text is never
 * longer than the source, so one buffer of the source's size suffices. */
static cg_status parse_string(parser *p, char **out, size_t *out_len)
{
    size_t start = ++p->pos; /* after the quote */
    size_t end = start;
    /* find the closing quote first, skipping escaped characters */
    while (end < p->len && p->s[end] != '"') {
        if (p->s[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len) {
        p->pos = p->len;
        return fail(p, "EOF while parsing a string");
    }
    unsigned char *buf = cg_malloc(end - start + 1);
    if (!buf)
        return nomem(p, end - start + 1);
    size_t n = 0;
    cg_status st = CG_OK;
    while (p->pos < end) {
        unsigned char c = p->s[p->pos];
        if (c < 0x20) {
            st = fail(p, "control character (\\u0000-\\u001F) found while "
                         "parsing a string");
            goto done;
        }
        if (c != '\\') {
            size_t k = utf8_seq(p->s + p->pos, end - p->pos);
            if (!k) {
                st = fail(p, "invalid UTF-8 in string");
                goto done;
            }
            memcpy(buf + n, p->s + p->pos, k);
            n += k;
            p->pos += k;
            continue;
        }
        size_t esc = p->pos++;
        unsigned char e = p->s[p->pos++];
        unsigned cp;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            buf[n++] = e;
            break;
        case 'b':
            buf[n++] = '\b';
            break;
        case 'f':
            buf[n++] = '\f';
            break;
        case 'n':
            buf[n++] = '\n';
            break;
        case 'r':
            buf[n++] = '\r';
            break;
        case 't':
            buf[n++] = '\t';
            break;
        case 'u':
            if ((st = read_hex4(p, &cp)) != CG_OK)
                goto done;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                st = fail_at(p, esc, "lone trailing surrogate in hex escape");
                goto done;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - p->pos < 2 || p->s[p->pos] != '\\' ||
                    p->s[p->pos + 1] != 'u') {
                    st =
                        fail_at(p, esc, "lone leading surrogate in hex escape");
                    goto done;
                }
                p->pos += 2;
                if ((st = read_hex4(p, &lo)) != CG_OK)
                    goto done;
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    st =
                        fail_at(p, esc, "lone leading surrogate in hex escape");
                    goto done;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            n += put_utf8(buf + n, cp);
            break;
        default:
            st = fail_at(p, esc, "invalid escape");
            goto done;
        }
    }
    p->pos = end + 1;
done:
    if (st != CG_OK) {
        cg_free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = (char *)buf;
    *out_len = n;
    return CG_OK;
}

/* ---- arrays and objects ------------------------------------------------- */

static cg_status parse_value(parser *p, cg__json *v);

/* Makes room for one more item (and key, for objects). */
static cg_status grow(parser *p, cg__json *v, int *cap, bool object)
{
    if (v->n < *cap)
        return CG_OK;
    if (*cap > (1 << 28))
        return nomem(p, SIZE_MAX);
    int c = *cap ? 2 * *cap : 4;
    cg__json *items = cg_realloc(v->items, (size_t)c * sizeof *items);
    if (!items)
        return nomem(p, (size_t)c * sizeof *items);
    v->items = items;
    if (object) {
        char **keys = cg_realloc(v->keys, (size_t)c * sizeof *keys);
        if (!keys)
            return nomem(p, (size_t)c * sizeof *keys);
        v->keys = keys;
        size_t *lens = cg_realloc(v->key_lens, (size_t)c * sizeof *lens);
        if (!lens)
            return nomem(p, (size_t)c * sizeof *lens);
        v->key_lens = lens;
    }
    *cap = c;
    return CG_OK;
}

static cg_status parse_array(parser *p, cg__json *v)
{
    v->type = CG__JSON_ARRAY;
    p->pos++; /* '[' */
    int cap = 0;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return CG_OK;
    }
    for (;;) {
        cg_status st = grow(p, v, &cap, false);
        if (st != CG_OK)
            return st;
        cg__json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        v->n++;
        if ((st = parse_value(p, item)) != CG_OK)
            return st;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail(p, "EOF while parsing a list");
        if (p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ']')
                return fail(p, "trailing comma");
            continue;
        }
        if (p->s[p->pos] == ']') {
            p->pos++;
            return CG_OK;
        }
        return fail(p, "expected ',' or ']'");
    }
}

typedef struct key_ref {
    const char *s;
    size_t len;
    size_t pos; /* where the key starts, for the message */
} key_ref;

static int key_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    /* equal keys: the later one is the duplicate */
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Reports the first (in text order) key that repeats an earlier one. */
static cg_status check_duplicates(parser *p, const cg__json *v,
                                  const size_t *key_pos)
{
    if (v->n < 2)
        return CG_OK;
    key_ref *refs = cg_malloc((size_t)v->n * sizeof *refs);
    if (!refs)
        return nomem(p, (size_t)v->n * sizeof *refs);
    for (int i = 0; i < v->n; i++)
        refs[i] = (key_ref){v->keys[i], v->key_lens[i], key_pos[i]};
    qsort(refs, (size_t)v->n, sizeof *refs, key_cmp);
    size_t dup = SIZE_MAX;
    const key_ref *dk = NULL;
    for (int i = 1; i < v->n; i++) {
        if (refs[i].len == refs[i - 1].len &&
            memcmp(refs[i].s, refs[i - 1].s, refs[i].len) == 0 &&
            refs[i].pos < dup) {
            dup = refs[i].pos;
            dk = &refs[i];
        }
    }
    cg_status st = CG_OK;
    if (dk) {
        char what[160];
        /* keys shown up to 100 bytes, enough to recognise them */
        int shown = dk->len > 100 ? 100 : (int)dk->len;
        snprintf(what, sizeof what, "duplicate key \"%.*s%s\"", shown, dk->s,
                 dk->len > 100 ? "..." : "");
        st = fail_at(p, dup, what);
    }
    cg_free(refs);
    return st;
}

static cg_status parse_object(parser *p, cg__json *v)
{
    v->type = CG__JSON_OBJECT;
    p->pos++; /* '{' */
    int cap = 0;
    size_t *key_pos = NULL;
    cg_status st = CG_OK;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return CG_OK;
    }
    for (;;) {
        if (p->pos >= p->len) {
            st = fail(p, "EOF while parsing an object");
            break;
        }
        if (p->s[p->pos] != '"') {
            st = fail(p, "key must be a string");
            break;
        }
        int old_cap = cap;
        if ((st = grow(p, v, &cap, true)) != CG_OK)
            break;
        if (cap != old_cap) {
            size_t *kp = cg_realloc(key_pos, (size_t)cap * sizeof *kp);
            if (!kp) {
                st = nomem(p, (size_t)cap * sizeof *kp);
                break;
            }
            key_pos = kp;
        }
        size_t kstart = p->pos;
        char *key = NULL;
        size_t klen = 0;
        if ((st = parse_string(p, &key, &klen)) != CG_OK)
            break;
        cg__json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        v->keys[v->n] = key;
        v->key_lens[v->n] = klen;
        key_pos[v->n] = kstart;
        v->n++;
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':') {
            st = fail(p, p->pos >= p->len ? "EOF while parsing an object"
                                          : "expected ':'");
            break;
        }
        p->pos++;
        if ((st = parse_value(p, item)) != CG_OK)
            break;
        skip_ws(p);
        if (p->pos >= p->len) {
            st = fail(p, "EOF while parsing an object");
            break;
        }
        if (p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '}') {
                st = fail(p, "trailing comma");
                break;
            }
            continue;
        }
        if (p->s[p->pos] == '}') {
            p->pos++;
            st = check_duplicates(p, v, key_pos);
            break;
        }
        st = fail(p, "expected ',' or '}'");
        break;
    }
    cg_free(key_pos);
    return st;
}

static cg_status parse_value(parser *p, cg__json *v)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "EOF while parsing a value");
    v->pos = p->pos;
    unsigned char c = p->s[p->pos];
    cg_status st;
    switch (c) {
    case '{':
    case '[':
        if (p->depth >= CG__JSON_MAX_DEPTH)
            return fail(p, "recursion limit exceeded");
        p->depth++;
        st = c == '{' ? parse_object(p, v) : parse_array(p, v);
        p->depth--;
        return st;
    case '"':
        v->type = CG__JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    case 't':
        return parse_word(p, "true", v, CG__JSON_BOOL, true);
    case 'f':
        return parse_word(p, "false", v, CG__JSON_BOOL, false);
    case 'n':
        return parse_word(p, "null", v, CG__JSON_NULL, false);
    default:
        if (c == '-' || is_digit(c))
            return parse_number(p, v);
        return fail(p, "expected value");
    }
}

cg_status cg__json_parse(const char *text, size_t len, cg__json **out,
                         char *err, size_t errsize)
{
    if (err && errsize)
        err[0] = '\0';
    if (!text && len)
        return cg__nn_null("text");
    if (!out)
        return cg__nn_null("out");
    cg__json *v = cg_calloc(1, sizeof *v);
    if (!v)
        return cg__nn_nomem(sizeof *v);
    parser p = {(const unsigned char *)text, len, 0, 0, err, errsize, CG_OK};
    cg_status st = parse_value(&p, v);
    if (st == CG_OK) {
        skip_ws(&p);
        if (p.pos < p.len)
            st = fail(&p, "trailing characters");
    }
    if (st != CG_OK) {
        cg__json_free(v);
        return p.nomem != CG_OK ? p.nomem : st;
    }
    *out = v;
    return CG_OK;
}
