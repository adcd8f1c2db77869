/*
 * json_internal.h -- a strict JSON (RFC 8259) reader for the headers of
 * safetensors files. Private to the library; never installed.
 *
 * The text is parsed into a small tree. Strict means: one value, with
 * only JSON whitespace around it; no comments, trailing commas, single
 * quotes, NaN/Infinity, leading zeros or leading '+'; strings must be
 * valid UTF-8 without raw control characters, and \u escapes must pair
 * surrogates; objects may not repeat a key; nesting is limited to
 * CG__JSON_MAX_DEPTH levels. Numbers keep whether they are a plain
 * non-negative integer that fits in uint64_t (all a safetensors header
 * needs) and are otherwise only checked for syntax.
 */
#ifndef CGRAD_NN_JSON_INTERNAL_H
#define CGRAD_NN_JSON_INTERNAL_H

#include "cgrad.h"

#define CG__JSON_MAX_DEPTH 64

typedef enum cg__json_type {
    CG__JSON_NULL = 0,
    CG__JSON_BOOL = 1,
    CG__JSON_NUMBER = 2,
    CG__JSON_STRING = 3,
    CG__JSON_ARRAY = 4,
    CG__JSON_OBJECT = 5,
    CG__JSON_TYPE_COUNT
} cg__json_type;

typedef struct cg__json cg__json;

/** A JSON value. Strings (values and keys) are decoded UTF-8, NUL
 *  terminated, and may hold NUL bytes from \u0000 (their length says). */
struct cg__json {
    cg__json_type type;
    size_t pos;        /* byte offset of the value in the text */
    bool boolean;      /* BOOL */
    bool is_uint;      /* NUMBER: a non-negative integer literal (no
                          fraction, no exponent) that fits in uint64_t */
    uint64_t uint_val; /* NUMBER with is_uint */
    char *str;         /* STRING: owned */
    size_t len;        /* STRING: bytes, without the NUL */
    int n;             /* ARRAY, OBJECT: number of items */
    cg__json *items;   /* ARRAY, OBJECT: n values, in text order */
    char **keys;       /* OBJECT: n keys, owned */
    size_t *key_lens;  /* OBJECT: their lengths */
};

/** Parses text[0..len). On success *out is a new tree (free with
 *  cg__json_free). A syntax error returns CG_ERR_VALUE without setting
 *  the thread's error: `err` (errsize bytes) gets a description such as
 *  "expected ',' or '}' at line 1 column 17" for the caller to wrap. Out
 *  of memory returns CG_ERR_NOMEM with the error set. */
cg_status cg__json_parse(const char *text, size_t len, cg__json **out,
                         char *err, size_t errsize);
/** NULL-safe. */
void cg__json_free(cg__json *v);
/** The member of object v called key (a C string), or NULL. */
const cg__json *cg__json_get(const cg__json *v, const char *key);
/** True when s[0..n) is valid UTF-8 (no overlong forms, surrogates or
 *  code points past U+10FFFF); otherwise *bad (if not NULL) gets the
 *  offset of the first invalid byte. */
bool cg__utf8_valid(const char *s, size_t n, size_t *bad);
/** "null", "bool", "number", "string", "array", "object". */
const char *cg__json_type_name(cg__json_type t);

#endif /* CGRAD_NN_JSON_INTERNAL_H */
