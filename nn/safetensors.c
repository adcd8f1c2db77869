/*
 * safetensors.c -- state dicts in the safetensors format
 * (huggingface/safetensors), the checkpoint format PyTorch (through the
 * safetensors package), tinygrad and candle read.
 *
 * A file is: an unsigned 64-bit little-endian header length N; N bytes of
 * UTF-8 JSON, an object mapping each tensor's name to {"dtype", "shape",
 * "data_offsets": [begin, end)} (offsets relative to the byte after the
 * header) plus an optional "__metadata__" object of string -> string; then
 * the tensors' bytes, C order, little endian. The writer emits the header
 * compactly (as serde_json does: no spaces, keys dtype, shape,
 * data_offsets) and pads it with spaces to a multiple of 8, as the
 * reference writer does, so every tensor starts 8-byte aligned. It keeps
 * the state dict's order (the reference writer sorts by dtype and name;
 * the format leaves the order free and readers sort by offset).
 *
 * dtypes: F32, F64 and C64 (complex64 as interleaved float32 pairs, added
 * in safetensors 0.7). safetensors has no complex128: saving one is a
 * ValueError (save view_as_real(t) instead). On load, I64 is also read,
 * into float64, when every value is exact in a double (|v| <= 2^53): it
 * is the dtype of PyTorch's BatchNorm num_batches_tracked, which cgrad
 * keeps as a 0-d float64 tensor (PyTorch's load_state_dict converts it
 * back). Other safetensors dtypes (F16, BF16, I32, ...) cannot be held by
 * a cgrad tensor and are refused with a message naming them.
 *
 * The non-tensor entries of a cg_state_dict (numbers, bools, None) go to
 * __metadata__, whose values must be strings: "True", "False", "None", and
 * for a number the shortest of %.15g/%.16g/%.17g that reads back as the
 * same double (so the round trip is exact), written and read independent
 * of the C locale.
 *
 * The reader is strict (json.c is a strict RFC 8259 parser) and checks,
 * before allocating anything but the header itself, everything the
 * reference reader checks and more: file and header lengths (header at
 * most 100,000,000 bytes, as the reference allows), UTF-8, JSON, duplicate
 * and unknown keys, dtypes, shapes (at most CG_MAX_DIMS dimensions, no
 * overflow of the element or byte count), offsets (ordered, no overlap, no
 * gap, covering the data exactly to the end of the file).
 */
#include "json_internal.h"
#include "module_internal.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The reference reader's limit on the header length. */
#define MAX_HEADER_BYTES 100000000ull

/* ======================================================================
 * dtypes
 * ====================================================================== */

static const char *dtype_code(cg_dtype dt)
{
    switch (dt) {
    case CG_FLOAT32:
        return "F32";
    case CG_FLOAT64:
        return "F64";
    case CG_COMPLEX64:
        return "C64";
    default:
        return NULL;
    }
}

/* Every dtype safetensors defines, to tell "unsupported" from "unknown". */
static bool is_safetensors_dtype(const char *s)
{
    static const char *const all[] = {
        "BOOL", "U8",   "I8",  "F8_E5M2", "F8_E4M3", "I16",    "U16",
        "F16",  "BF16", "I32", "U32",     "F32",     "F64",    "I64",
        "U64",  "C64",  "F4",  "F6_E2M3", "F6_E3M2", "F8_E8M0"};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (strcmp(s, all[i]) == 0)
            return true;
    return false;
}

static bool host_is_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Reverses each `width`-byte word of buf[0..bytes) (big-endian hosts). */
static void swap_words(unsigned char *buf, size_t bytes, size_t width)
{
    for (size_t i = 0; i + width <= bytes; i += width)
        for (size_t a = i, b = i + width - 1; a < b; a++, b--) {
            unsigned char t = buf[a];
            buf[a] = buf[b];
            buf[b] = t;
        }
}

/* ======================================================================
 * Numbers as metadata text, independent of the C locale
 * ====================================================================== */

static char locale_point(void)
{
    const struct lconv *lc = localeconv();
    return lc && lc->decimal_point && lc->decimal_point[0]
               ? lc->decimal_point[0]
               : '.';
}

static double parse_double_c(const char *s, char **end)
{
    char buf[64];
    size_t n = strlen(s);
    char point = locale_point();
    if (point == '.' || n >= sizeof buf)
        return strtod(s, end);
    memcpy(buf, s, n + 1);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '.')
            buf[i] = point;
    char *e = NULL;
    double v = strtod(buf, &e);
    *end = (char *)s + (e - buf);
    return v;
}

/* The shortest %.Ng (N = 15..17) text of v that reads back as v. */
static void format_number(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v < 0 ? "-inf" : "inf");
        return;
    }
    char point = locale_point();
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (point != '.')
            for (char *c = buf; *c; c++)
                if (*c == point)
                    *c = '.';
        char *end = NULL;
        if (parse_double_c(buf, &end) == v)
            return;
    }
}

/* Reads a number written by format_number (or any decimal float text:
 * [-]digits[.digits][e[+-]digits], inf, -inf, nan); false otherwise. */
static bool parse_number_text(const char *s, double *out)
{
    if (strcmp(s, "nan") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(s, "inf") == 0 || strcmp(s, "-inf") == 0) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return false;
    for (const char *c = p; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' ||
              *c == '+' || *c == '-'))
            return false;
    char *end = NULL;
    double v = parse_double_c(s, &end);
    if (!end || *end != '\0')
        return false;
    *out = v;
    return true;
}

/* ======================================================================
 * Errors
 * ====================================================================== */

/* ValueError "cannot load '<path>': <what>". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static cg_status
load_error(const char *path, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    cg__strbuf sb = CG__STRBUF_INIT;
    cg__sb_puts(&sb, "cannot load ");
    cg__sb_pystr(&sb, path);
    cg__sb_printf(&sb, ": %s", what);
    cg_status st = cg__sb_status(&sb);
    if (st == CG_OK)
        st = cg_error(CG_ERR_VALUE, "%s", sb.data);
    cg__sb_free(&sb);
    return st;
}

/* OSError as Python words it: "[Errno 2] No such file or directory:
 * 'x.safetensors'". */
static cg_status io_error(int err, const char *path)
{
    char text[256];
    if (strerror_r(err, text, sizeof text) != 0)
        snprintf(text, sizeof text, "Unknown error %d", err);
    cg__strbuf sb = CG__STRBUF_INIT;
    cg__sb_printf(&sb, "[Errno %d] %s: ", err, text);
    cg__sb_pystr(&sb, path);
    cg_status st = cg__sb_status(&sb);
    if (st == CG_OK)
        st = cg_error(CG_ERR_IO, "%s", sb.data);
    cg__sb_free(&sb);
    return st;
}

/* repr(name) into buf (names in messages), cut at about 200 bytes. */
static const char *name_repr(const char *name, char *buf, size_t size)
{
    cg__strbuf sb = CG__STRBUF_INIT;
    if (cg__utf8_valid(name, strlen(name), NULL)) {
        cg__sb_pystr(&sb, name);
    } else {
        /* not text: shown as Python shows bytes, \xNN past ASCII */
        cg__sb_puts(&sb, "'");
        for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
            if (*p == '\'' || *p == '\\')
                cg__sb_printf(&sb, "\\%c", *p);
            else if (*p < 0x20 || *p >= 0x7f)
                cg__sb_printf(&sb, "\\x%02x", *p);
            else
                cg__sb_putn(&sb, (const char *)p, 1);
        }
        cg__sb_puts(&sb, "'");
    }
    if (cg__sb_status(&sb) != CG_OK || !sb.data) {
        snprintf(buf, size, "'?'");
    } else if (sb.len >= size) {
        snprintf(buf, size, "%.*s...", (int)(size - 4), sb.data);
    } else {
        memcpy(buf, sb.data, sb.len + 1);
    }
    cg__sb_free(&sb);
    return buf;
}

/* ======================================================================
 * Writing
 * ====================================================================== */

/* A JSON string as serde_json writes it: \" \\ \b \f \n \r \t, other
 * control characters as \u00xx, everything else (UTF-8) as is. */
static void put_json_string(cg__strbuf *sb, const char *s)
{
    cg__sb_puts(sb, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            cg__sb_puts(sb, "\\\"");
            break;
        case '\\':
            cg__sb_puts(sb, "\\\\");
            break;
        case '\b':
            cg__sb_puts(sb, "\\b");
            break;
        case '\f':
            cg__sb_puts(sb, "\\f");
            break;
        case '\n':
            cg__sb_puts(sb, "\\n");
            break;
        case '\r':
            cg__sb_puts(sb, "\\r");
            break;
        case '\t':
            cg__sb_puts(sb, "\\t");
            break;
        default:
            if (*p < 0x20)
                cg__sb_printf(sb, "\\u%04x", *p);
            else
                cg__sb_putn(sb, (const char *)p, 1);
        }
    }
    cg__sb_puts(sb, "\"");
}

/* Checks what cannot be written; nothing is created on failure. */
static cg_status check_saveable(const cg_state_dict *sd)
{
    char rb[240];
    for (int i = 0; i < cg_state_dict_size(sd); i++) {
        const char *name;
        cg_state_kind kind;
        cg_tensor *t;
        cg_state_dict_entry(sd, i, &name, &kind, &t, NULL);
        size_t bad = 0;
        if (!cg__utf8_valid(name, strlen(name), &bad))
            return cg_error(CG_ERR_VALUE,
                            "cannot save %s to safetensors: the name is not "
                            "valid UTF-8 (byte %zu)",
                            name_repr(name, rb, sizeof rb), bad);
        if (strcmp(name, "__metadata__") == 0)
            return cg_error(CG_ERR_VALUE,
                            "cannot save an entry named '__metadata__' to "
                            "safetensors: the name is reserved");
        if (kind == CG_STATE_TENSOR && !dtype_code(cg_tensor_dtype(t)))
            return cg_error(CG_ERR_VALUE,
                            "cannot save %s to safetensors: safetensors has "
                            "no dtype for %s (save view_as_real of it "
                            "instead)",
                            name_repr(name, rb, sizeof rb),
                            cg_dtype_name(cg_tensor_dtype(t)));
    }
    return CG_OK;
}

/* The padded header; *data_bytes gets the size of the data section. */
static cg_status build_header(const cg_state_dict *sd, cg__strbuf *sb,
                              uint64_t *data_bytes)
{
    int n = cg_state_dict_size(sd);
    bool any_meta = false;
    for (int i = 0; i < n && !any_meta; i++) {
        cg_state_kind kind;
        cg_state_dict_entry(sd, i, NULL, &kind, NULL, NULL);
        any_meta = kind != CG_STATE_TENSOR;
    }
    cg__sb_puts(sb, "{");
    bool first = true;
    if (any_meta) {
        cg__sb_puts(sb, "\"__metadata__\":{");
        for (int i = 0; i < n; i++) {
            const char *name;
            cg_state_kind kind;
            double v;
            cg_state_dict_entry(sd, i, &name, &kind, NULL, &v);
            if (kind == CG_STATE_TENSOR)
                continue;
            char text[40];
            if (kind == CG_STATE_BOOL)
                snprintf(text, sizeof text, "%s", v != 0.0 ? "True" : "False");
            else if (kind == CG_STATE_NONE)
                snprintf(text, sizeof text, "None");
            else
                format_number(v, text, sizeof text);
            if (!first)
                cg__sb_puts(sb, ",");
            first = false;
            put_json_string(sb, name);
            cg__sb_puts(sb, ":");
            put_json_string(sb, text);
        }
        cg__sb_puts(sb, "}");
        first = false;
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const char *name;
        cg_state_kind kind;
        cg_tensor *t;
        cg_state_dict_entry(sd, i, &name, &kind, &t, NULL);
        if (kind != CG_STATE_TENSOR)
            continue;
        uint64_t bytes =
            (uint64_t)cg_tensor_numel(t) * cg_dtype_size(cg_tensor_dtype(t));
        if (!first)
            cg__sb_puts(sb, ",");
        first = false;
        put_json_string(sb, name);
        cg__sb_printf(sb, ":{\"dtype\":\"%s\",\"shape\":",
                      dtype_code(cg_tensor_dtype(t)));
        /* serde's compact list: [1,2,3] */
        cg__sb_puts(sb, "[");
        for (int d = 0; d < cg_tensor_dim(t); d++)
            cg__sb_printf(sb, d ? ",%lld" : "%lld",
                          (long long)cg_tensor_shape(t)[d]);
        cg__sb_puts(sb, "]");
        cg__sb_printf(sb, ",\"data_offsets\":[%llu,%llu]}",
                      (unsigned long long)offset,
                      (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    cg__sb_puts(sb, "}");
    while (sb->len % 8 && cg__sb_status(sb) == CG_OK)
        cg__sb_puts(sb, " ");
    *data_bytes = offset;
    return cg__sb_status(sb);
}

static cg_status write_tensor(FILE *f, cg_tensor *t, const char *path)
{
    cg_tensor *d = NULL, *c = NULL;
    cg_status st = cg_tensor_detach(t, &d);
    if (st == CG_OK)
        st = cg_tensor_contiguous(d, &c);
    cg_tensor_release(d);
    if (st != CG_OK)
        return st;
    size_t width = cg_dtype_size(cg_tensor_dtype(c));
    size_t bytes = (size_t)cg_tensor_numel(c) * width;
    if (bytes && !host_is_little_endian()) {
        if (cg_dtype_is_complex(cg_tensor_dtype(c)))
            width /= 2;
        unsigned char *tmp = cg_malloc(bytes);
        if (!tmp) {
            cg_tensor_release(c);
            return cg__nn_nomem(bytes);
        }
        memcpy(tmp, cg_tensor_data(c), bytes);
        swap_words(tmp, bytes, width);
        if (fwrite(tmp, 1, bytes, f) != bytes)
            st = io_error(errno ? errno : EIO, path);
        cg_free(tmp);
    } else if (bytes && fwrite(cg_tensor_data(c), 1, bytes, f) != bytes) {
        st = io_error(errno ? errno : EIO, path);
    }
    cg_tensor_release(c);
    return st;
}

cg_status cg_safetensors_save(const cg_state_dict *sd, const char *path)
{
    if (!sd)
        return cg__nn_null("state dict");
    if (!path)
        return cg__nn_null("path");
    cg_status st = check_saveable(sd);
    if (st != CG_OK)
        return st;
    cg__strbuf header = CG__STRBUF_INIT;
    uint64_t data_bytes = 0;
    if ((st = build_header(sd, &header, &data_bytes)) != CG_OK) {
        cg__sb_free(&header);
        return st;
    }
    errno = 0;
    FILE *f = fopen(path, "wb");
    if (!f) {
        st = io_error(errno, path);
        cg__sb_free(&header);
        return st;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)header.len >> (8 * i));
    if (fwrite(len8, 1, 8, f) != 8 ||
        fwrite(header.data, 1, header.len, f) != header.len)
        st = io_error(errno ? errno : EIO, path);
    cg__sb_free(&header);
    for (int i = 0; st == CG_OK && i < cg_state_dict_size(sd); i++) {
        cg_state_kind kind;
        cg_tensor *t;
        cg_state_dict_entry(sd, i, NULL, &kind, &t, NULL);
        if (kind == CG_STATE_TENSOR)
            st = write_tensor(f, t, path);
    }
    if (fclose(f) != 0 && st == CG_OK)
        st = io_error(errno ? errno : EIO, path);
    return st;
}

/* ======================================================================
 * Reading
 * ====================================================================== */

typedef struct tinfo {
    const char *name; /* borrowed from the JSON tree */
    cg_dtype dtype;
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    uint64_t begin, end;
    int order; /* position in the header, to keep ties stable */
    bool i64;  /* stored as I64, held as float64 */
} tinfo;

static int tinfo_cmp(const void *a, const void *b)
{
    const tinfo *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* A JSON array of non-negative integers into v (at most max entries). */
static bool uint_array(const cg__json *a, uint64_t *v, int max, int *n)
{
    if (!a || a->type != CG__JSON_ARRAY || a->n > max)
        return false;
    for (int i = 0; i < a->n; i++) {
        if (a->items[i].type != CG__JSON_NUMBER || !a->items[i].is_uint)
            return false;
        v[i] = a->items[i].uint_val;
    }
    *n = a->n;
    return true;
}

/* Reads and checks one tensor entry of the header. */
static cg_status parse_tensor_entry(const char *path, const char *name,
                                    const cg__json *v, tinfo *ti)
{
    char rb[240];
    /* the name as shown in messages, made only when one is needed */
#define NM name_repr(name, rb, sizeof rb)
    if (v->type != CG__JSON_OBJECT)
        return load_error(path, "entry %s is %s %s, not an object", NM,
                          v->type == CG__JSON_ARRAY ? "an" : "a",
                          cg__json_type_name(v->type));
    for (int i = 0; i < v->n; i++) {
        const char *k = v->keys[i];
        if (strlen(k) != v->key_lens[i] ||
            (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 &&
             strcmp(k, "data_offsets") != 0)) {
            char kb[120];
            return load_error(path,
                              "tensor %s has an unknown field %s (expected "
                              "dtype, shape and data_offsets)",
                              NM, name_repr(k, kb, sizeof kb));
        }
    }
    const cg__json *dt = cg__json_get(v, "dtype");
    const cg__json *shape = cg__json_get(v, "shape");
    const cg__json *offs = cg__json_get(v, "data_offsets");
    if (!dt || !shape || !offs)
        return load_error(path, "tensor %s has no \"%s\"", NM,
                          !dt      ? "dtype"
                          : !shape ? "shape"
                                   : "data_offsets");
    if (dt->type != CG__JSON_STRING)
        return load_error(path, "the dtype of tensor %s is not a string", NM);
    if (strcmp(dt->str, "F32") == 0) {
        ti->dtype = CG_FLOAT32;
    } else if (strcmp(dt->str, "F64") == 0) {
        ti->dtype = CG_FLOAT64;
    } else if (strcmp(dt->str, "C64") == 0) {
        ti->dtype = CG_COMPLEX64;
    } else if (strcmp(dt->str, "I64") == 0) {
        ti->dtype = CG_FLOAT64; /* same width; converted after reading */
        ti->i64 = true;
    } else {
        char db[60];
        name_repr(dt->str, db, sizeof db);
        if (is_safetensors_dtype(dt->str))
            return load_error(path,
                              "tensor %s has dtype %s, which cgrad cannot "
                              "hold (it loads F32, F64, C64 and I64)",
                              NM, db);
        return load_error(path, "tensor %s has an unknown dtype %s", NM, db);
    }
    uint64_t dims[CG_MAX_DIMS];
    if (shape->type == CG__JSON_ARRAY && shape->n > CG_MAX_DIMS)
        return load_error(path,
                          "tensor %s has %d dimensions; cgrad tensors have "
                          "at most %d",
                          NM, shape->n, CG_MAX_DIMS);
    if (!uint_array(shape, dims, CG_MAX_DIMS, &ti->ndim))
        return load_error(path,
                          "the shape of tensor %s is not a list of "
                          "non-negative integers",
                          NM);
    uint64_t o[2];
    int no = 0;
    if (!uint_array(offs, o, 2, &no) || no != 2)
        return load_error(path,
                          "the data_offsets of tensor %s are not two "
                          "non-negative integers [begin, end]",
                          NM);
    ti->begin = o[0];
    ti->end = o[1];
    /* element and byte counts without overflow: the product of the
     * sizes, empty dimensions counted as 1 (what the strides of a
     * contiguous tensor multiply), must fit in int64_t */
    uint64_t prod = 1;
    bool overflow = false, zero = false;
    for (int i = 0; i < ti->ndim && !overflow; i++) {
        uint64_t d = dims[i] ? dims[i] : 1;
        zero = zero || dims[i] == 0;
        if (dims[i] > (uint64_t)INT64_MAX || prod > (uint64_t)INT64_MAX / d)
            overflow = true;
        else
            prod *= d;
    }
    uint64_t numel = zero ? 0 : prod;
    uint64_t width = cg_dtype_size(ti->dtype);
    if (!overflow && numel > UINT64_MAX / width)
        overflow = true;
    if (overflow)
        return load_error(path,
                          "the shape of tensor %s overflows: its element "
                          "or byte count does not fit in 64 bits",
                          NM);
    for (int i = 0; i < ti->ndim; i++)
        ti->shape[i] = (int64_t)dims[i];
    if (ti->begin > ti->end)
        return load_error(path,
                          "tensor %s has data_offsets [%llu, %llu]: the "
                          "end is before the beginning",
                          NM, (unsigned long long)ti->begin,
                          (unsigned long long)ti->end);
    if (ti->end - ti->begin != numel * width)
        return load_error(path,
                          "tensor %s has dtype %s and %llu elements (%llu "
                          "bytes), but its data_offsets [%llu, %llu] span "
                          "%llu bytes",
                          NM, dt->str, (unsigned long long)numel,
                          (unsigned long long)(numel * width),
                          (unsigned long long)ti->begin,
                          (unsigned long long)ti->end,
                          (unsigned long long)(ti->end - ti->begin));
#undef NM
    return CG_OK;
}

/* Converts the int64 values read into t's float64 buffer, in place;
 * ValueError for a value a double cannot hold exactly. */
static cg_status i64_to_double(cg_tensor *t, const char *path, const char *name)
{
    unsigned char *p = cg_tensor_data(t);
    const int64_t limit = (int64_t)1 << 53;
    for (int64_t k = 0; k < cg_tensor_numel(t); k++, p += 8) {
        int64_t v;
        memcpy(&v, p, 8);
        if (v > limit || v < -limit) {
            char rb[240];
            return load_error(path,
                              "tensor %s holds the int64 value %lld, which "
                              "a float64 tensor cannot hold exactly",
                              name_repr(name, rb, sizeof rb), (long long)v);
        }
        double d = (double)v;
        memcpy(p, &d, 8);
    }
    return CG_OK;
}

/* What a metadata value means; false for text that is none of them. */
static bool parse_meta_value(const char *s, cg_state_kind *kind, double *v)
{
    *v = 0.0;
    if (strcmp(s, "True") == 0 || strcmp(s, "False") == 0) {
        *kind = CG_STATE_BOOL;
        *v = s[0] == 'T' ? 1.0 : 0.0;
        return true;
    }
    if (strcmp(s, "None") == 0) {
        *kind = CG_STATE_NONE;
        return true;
    }
    *kind = CG_STATE_NUMBER;
    return parse_number_text(s, v);
}

/* The whole file's checks, then the reads. */
static cg_status load_file(FILE *f, const char *path, uint64_t file_size,
                           cg_state_dict **out)
{
    char rb[240];
    if (file_size < 8)
        return load_error(path,
                          "the file is %llu bytes long, too short for the "
                          "8-byte header length",
                          (unsigned long long)file_size);
    unsigned char len8[8];
    if (fread(len8, 1, 8, f) != 8)
        return io_error(ferror(f) && errno ? errno : EIO, path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | len8[i];
    if (n > MAX_HEADER_BYTES)
        return load_error(path,
                          "the header length %llu is larger than the "
                          "%llu bytes allowed",
                          (unsigned long long)n, MAX_HEADER_BYTES);
    if (n > file_size - 8)
        return load_error(path,
                          "the header length %llu runs past the end of the "
                          "file (%llu bytes after the length)",
                          (unsigned long long)n,
                          (unsigned long long)(file_size - 8));
    if (n == 0)
        return load_error(path, "the header is empty");
    char *text = cg_malloc((size_t)n);
    if (!text)
        return cg__nn_nomem((size_t)n);
    cg__json *root = NULL;
    tinfo *ti = NULL;
    cg_state_dict *sd = NULL;
    cg_status st = CG_OK;
    if (fread(text, 1, (size_t)n, f) != (size_t)n) {
        st = io_error(ferror(f) && errno ? errno : EIO, path);
        goto done;
    }
    size_t bad = 0;
    if (!cg__utf8_valid(text, (size_t)n, &bad)) {
        st = load_error(path, "the header is not valid UTF-8 (byte %zu)", bad);
        goto done;
    }
    char err[200];
    st = cg__json_parse(text, (size_t)n, &root, err, sizeof err);
    if (st == CG_ERR_VALUE)
        st = load_error(path, "the header is not valid JSON: %s", err);
    if (st != CG_OK)
        goto done;
    if (root->type != CG__JSON_OBJECT) {
        st = load_error(path, "the header is a JSON %s, not an object",
                        cg__json_type_name(root->type));
        goto done;
    }
    uint64_t data_size = file_size - 8 - n;

    /* the entries */
    int nt = 0;
    const cg__json *meta = NULL;
    if (root->n > 0 && !(ti = cg_calloc((size_t)root->n, sizeof *ti))) {
        st = cg__nn_nomem((size_t)root->n * sizeof *ti);
        goto done;
    }
    for (int i = 0; i < root->n; i++) {
        const char *name = root->keys[i];
        if (strlen(name) != root->key_lens[i]) {
            st = load_error(path, "a name holds a NUL character (\\u0000)");
            goto done;
        }
        if (strcmp(name, "__metadata__") == 0) {
            meta = &root->items[i];
            continue;
        }
        ti[nt].name = name;
        ti[nt].order = nt;
        if ((st = parse_tensor_entry(path, name, &root->items[i], &ti[nt])) !=
            CG_OK)
            goto done;
        nt++;
    }
    if (meta) {
        if (meta->type != CG__JSON_OBJECT) {
            st = load_error(path, "__metadata__ is not an object");
            goto done;
        }
        for (int i = 0; i < meta->n; i++) {
            const char *k = meta->keys[i];
            const cg__json *v = &meta->items[i];
            if (strlen(k) != meta->key_lens[i]) {
                st = load_error(path, "a name holds a NUL character (\\u0000)");
                goto done;
            }
            if (v->type != CG__JSON_STRING) {
                st = load_error(path,
                                "the __metadata__ value of %s is not a "
                                "string",
                                name_repr(k, rb, sizeof rb));
                goto done;
            }
            cg_state_kind kind;
            double num;
            if (strcmp(k, "format") == 0 &&
                !parse_meta_value(v->str, &kind, &num))
                continue; /* the framework tag: "pt", "np", ... */
            if (strlen(v->str) != v->len ||
                !parse_meta_value(v->str, &kind, &num)) {
                char vb[120];
                st = load_error(path,
                                "the __metadata__ value of %s is %s, which "
                                "is not a number, True, False or None",
                                name_repr(k, rb, sizeof rb),
                                name_repr(v->str, vb, sizeof vb));
                goto done;
            }
            if (cg__json_get(root, k)) {
                st = load_error(path,
                                "%s is both a tensor and a __metadata__ "
                                "entry",
                                name_repr(k, rb, sizeof rb));
                goto done;
            }
        }
    }

    /* the offsets tile [0, data_size) exactly */
    if (nt > 1)
        qsort(ti, (size_t)nt, sizeof *ti, tinfo_cmp);
    uint64_t at = 0;
    for (int i = 0; i < nt; i++) {
#define NM name_repr(ti[i].name, rb, sizeof rb)
        if (ti[i].end > data_size) {
            st = load_error(path,
                            "tensor %s has data_offsets [%llu, %llu], past "
                            "the end of the %llu data bytes",
                            NM, (unsigned long long)ti[i].begin,
                            (unsigned long long)ti[i].end,
                            (unsigned long long)data_size);
            goto done;
        }
        if (ti[i].begin < at) {
            char pb[240];
            st = load_error(path,
                            "the data of tensor %s [%llu, %llu) overlaps "
                            "that of tensor %s",
                            NM, (unsigned long long)ti[i].begin,
                            (unsigned long long)ti[i].end,
                            name_repr(ti[i - 1].name, pb, sizeof pb));
            goto done;
        }
        if (ti[i].begin > at) {
            st = load_error(path,
                            "bytes [%llu, %llu) of the data belong to no "
                            "tensor (before tensor %s)",
                            (unsigned long long)at,
                            (unsigned long long)ti[i].begin, NM);
            goto done;
        }
        at = ti[i].end;
#undef NM
    }
    if (at != data_size) {
        st = load_error(path,
                        "the tensors cover %llu bytes but the data is %llu "
                        "bytes long",
                        (unsigned long long)at, (unsigned long long)data_size);
        goto done;
    }

    /* everything checked: read */
    if ((st = cg_state_dict_new(&sd)) != CG_OK)
        goto done;
    bool swap = !host_is_little_endian();
    for (int i = 0; i < nt; i++) {
        cg_tensor *t = NULL;
        if ((st = cg_empty(ti[i].shape, ti[i].ndim, ti[i].dtype, &t)) != CG_OK)
            goto done;
        size_t bytes = (size_t)(ti[i].end - ti[i].begin);
        if (bytes && fread(cg_tensor_data(t), 1, bytes, f) != bytes) {
            cg_tensor_release(t);
            st = io_error(ferror(f) && errno ? errno : EIO, path);
            goto done;
        }
        if (swap)
            swap_words(cg_tensor_data(t), bytes,
                       cg_dtype_size(cg_dtype_to_real(ti[i].dtype)));
        if (ti[i].i64 && (st = i64_to_double(t, path, ti[i].name)) != CG_OK) {
            cg_tensor_release(t);
            goto done;
        }
        st = cg_state_dict_set_tensor(sd, ti[i].name, t);
        cg_tensor_release(t);
        if (st != CG_OK)
            goto done;
    }
    for (int i = 0; meta && i < meta->n; i++) {
        cg_state_kind kind;
        double num;
        if (!parse_meta_value(meta->items[i].str, &kind, &num))
            continue; /* "format" */
        const char *k = meta->keys[i];
        if (kind == CG_STATE_BOOL)
            st = cg_state_dict_set_bool(sd, k, num != 0.0);
        else if (kind == CG_STATE_NONE)
            st = cg_state_dict_set_none(sd, k);
        else
            st = cg_state_dict_set_number(sd, k, num);
        if (st != CG_OK)
            goto done;
    }
    *out = sd;
    sd = NULL;
done:
    cg_state_dict_free(sd);
    cg_free(ti);
    cg__json_free(root);
    cg_free(text);
    return st;
}

cg_status cg_safetensors_load(const char *path, cg_state_dict **out)
{
    if (!path)
        return cg__nn_null("path");
    if (!out)
        return cg__nn_null("out");
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return io_error(errno, path);
    cg_status st = CG_OK;
    off_t size = -1;
    if (fseeko(f, 0, SEEK_END) != 0 || (size = ftello(f)) < 0 ||
        fseeko(f, 0, SEEK_SET) != 0)
        st = io_error(errno ? errno : EIO, path);
    if (st == CG_OK)
        st = load_file(f, path, (uint64_t)size, out);
    fclose(f);
    return st;
}

/* ======================================================================
 * Modules
 * ====================================================================== */

cg_status cg_module_save_safetensors(const cg_module *m, const char *path)
{
    if (!m)
        return cg__nn_null("module");
    if (!path)
        return cg__nn_null("path");
    cg_state_dict *sd = NULL;
    cg_status st = cg_module_state_dict(m, &sd);
    if (st == CG_OK)
        st = cg_safetensors_save(sd, path);
    cg_state_dict_free(sd);
    return st;
}

cg_status cg_module_load_safetensors(cg_module *m, const char *path,
                                     bool strict)
{
    if (!m)
        return cg__nn_null("module");
    if (!path)
        return cg__nn_null("path");
    cg_state_dict *sd = NULL;
    cg_status st = cg_safetensors_load(path, &sd);
    if (st == CG_OK)
        st = cg_module_load_state_dict(m, sd, strict);
    cg_state_dict_free(sd);
    return st;
}
