/*
 * npy.c -- NumPy .npy interchange: cg_load_npy and cg_save_npy.
 *
 * The format is NumPy's (numpy/lib/format.py, "NEP 1"): the magic string
 * "\x93NUMPY", a major and a minor version byte, the header length (u16
 * little-endian for version 1.0, u32 for 2.0 and 3.0), the header -- the
 * repr of a Python dict {'descr': ..., 'fortran_order': ..., 'shape': ...}
 * padded with spaces and ended by '\n' -- then the raw elements.
 *
 * Loading reads versions 1.0, 2.0 and 3.0 with one of the four dtypes
 * cgrad has, stored little-endian ('<f4', '<f8', '<c8', '<c16') in C
 * order. The header parser is strict: Python literal syntax for exactly
 * those three keys, in any order, with optional whitespace and a trailing
 * comma. Everything it refuses is a ValueError that names the file and
 * the problem; a file that cannot be opened or read is an OSError worded
 * as Python words it ("[Errno 2] No such file or directory: 'x.npy'").
 *
 * Deliberate differences from numpy.load:
 *   - Bytes after the data are an error. NumPy ignores them (it reads
 *     exactly the elements the header announces), which lets a header
 *     that disagrees with its data -- a wrong shape, a file written twice
 *     -- load silently. cgrad loads golden data and wants to know.
 *   - Headers longer than 65535 bytes are refused (NumPy refuses headers
 *     over 10000 bytes unless told otherwise); only structured dtypes,
 *     which cgrad cannot hold, need them.
 *   - 'fortran_order': True is refused, even for 0-d and 1-d arrays where
 *     the two orders coincide: NumPy itself never writes True for those.
 *
 * Saving writes version 1.0 byte for byte as numpy 1.24's np.save does
 * (same key order, the 21-digit growth padding after the dict, spaces to
 * a 64-byte boundary, '\n'), elements in row-major order whatever the
 * tensor's strides. A failed save leaves whatever part of the file was
 * written, as np.save does.
 *
 * Files are read and written with POSIX open/read/write in bounded chunks
 * (no stdio, so every allocation goes through cg__malloc). Element bytes
 * are swapped when the host is big-endian, a case checked at run time.
 */
#include "tensor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_ALIGN 64                   /* numpy aligns the data to 64 bytes */
#define NPY_GROWTH_DIGITS 21           /* numpy's GROWTH_AXIS_MAX_DIGITS */
#define NPY_HEADER_MAX 65535           /* longest header cgrad reads */
#define NPY_IO_CHUNK ((size_t)1 << 20) /* bytes per read()/write() call */

/* ---- messages ----------------------------------------------------------- */

/* Python's repr() of a str, for names in messages: single quotes unless
 * the text holds one and no double quote; backslash and control bytes
 * escaped. Long names are cut with "..." so the message stays whole. */
static void py_repr(const char *s, size_t n, char *buf, size_t size)
{
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    size_t k = 0;
    buf[k++] = q;
    for (size_t i = 0; i < n; i++) {
        /* room for the longest escape (4), "...", the quote and NUL */
        if (k + 10 > size) {
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == (unsigned char)q) {
            buf[k++] = '\\';
            buf[k++] = (char)c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            buf[k++] = '\\';
            buf[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(buf + k, size - k, "\\x%02x", c);
        } else {
            buf[k++] = (char)c;
        }
    }
    buf[k++] = q;
    buf[k] = '\0';
}

/* Python's repr() of bytes, for the magic string: b'\x93NUMPY' (double
 * quotes when the bytes hold a single quote and no double quote). */
static void bytes_repr(const unsigned char *s, size_t n, char *buf, size_t size)
{
    char q = (memchr(s, '\'', n) && !memchr(s, '"', n)) ? '"' : '\'';
    size_t k = (size_t)snprintf(buf, size, "b%c", q);
    for (size_t i = 0; i < n && k + 8 < size; i++) {
        unsigned char c = s[i];
        if (c == '\\' || c == (unsigned char)q)
            k += (size_t)snprintf(buf + k, size - k, "\\%c", c);
        else if (c == '\n')
            k += (size_t)snprintf(buf + k, size - k, "\\n");
        else if (c == '\r')
            k += (size_t)snprintf(buf + k, size - k, "\\r");
        else if (c == '\t')
            k += (size_t)snprintf(buf + k, size - k, "\\t");
        else if (c < 0x20 || c >= 0x7f)
            k += (size_t)snprintf(buf + k, size - k, "\\x%02x", c);
        else
            buf[k++] = (char)c;
    }
    snprintf(buf + k, size - k, "%c", q);
}

/* OSError as Python prints it: "[Errno 2] No such file or directory:
 * 'x.npy'". */
static cg_status io_error(int err, const char *path)
{
    char text[256], name[512];
    if (strerror_r(err, text, sizeof text) != 0)
        snprintf(text, sizeof text, "Unknown error %d", err);
    py_repr(path, strlen(path), name, sizeof name);
    return cg__error(CG_ERR_IO, "[Errno %d] %s: %s", err, text, name);
}

/* ValueError "cannot load 'x.npy': <what>". */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static cg_status
load_error(const char *path, const char *fmt, ...)
{
    char what[512], name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    py_repr(path, strlen(path), name, sizeof name);
    return cg__error(CG_ERR_VALUE, "cannot load %s: %s", name, what);
}

/* ---- byte order --------------------------------------------------------- */

static bool host_is_little_endian(void)
{
    const uint16_t probe = 1;
    unsigned char first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

/* Reverses the bytes of each `width`-byte component in buf[0, n). */
static void swap_components(unsigned char *buf, size_t n, size_t width)
{
    for (size_t i = 0; i + width <= n; i += width)
        for (size_t a = i, b = i + width - 1; a < b; a++, b--) {
            unsigned char c = buf[a];
            buf[a] = buf[b];
            buf[b] = c;
        }
}

/* Bytes of one real component of a dtype: 4 for float32 and complex64. */
static size_t component_size(cg_dtype dt)
{
    return cg_dtype_size(dt) / (cg_dtype_is_complex(dt) ? 2 : 1);
}

/* ---- raw I/O ------------------------------------------------------------ */

/* Reads up to n bytes, in chunks, until n or end of file. *got is the count
 * read; returns an OSError on a read error. */
static cg_status read_full(int fd, void *buf, size_t n, size_t *got,
                           const char *path)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < NPY_IO_CHUNK ? n - done : NPY_IO_CHUNK;
        ssize_t r = read(fd, (char *)buf + done, want);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return io_error(errno, path);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return CG_OK;
}

static cg_status write_full(int fd, const void *buf, size_t n, const char *path)
{
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < NPY_IO_CHUNK ? n - done : NPY_IO_CHUNK;
        ssize_t w = write(fd, (const char *)buf + done, want);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return io_error(errno, path);
        }
        done += (size_t)w;
    }
    return CG_OK;
}

/* ---- header parsing ----------------------------------------------------- */

/* The dtypes cgrad reads, by their descr. */
static const struct {
    const char *descr;
    cg_dtype dtype;
} npy_dtypes[] = {
    {"<f4", CG_FLOAT32},
    {"<f8", CG_FLOAT64},
    {"<c8", CG_COMPLEX64},
    {"<c16", CG_COMPLEX128},
};

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, KEY_COUNT };
static const char *const key_names[KEY_COUNT] = {"descr", "fortran_order",
                                                 "shape"};

/* What the header says, before it is checked against what cgrad reads. */
typedef struct header {
    const char *text; /* the header, n bytes (not NUL-terminated) */
    size_t n;
    size_t pos;  /* parse position in text */
    size_t base; /* file offset of text[0], for messages */
    const char *path;
    bool seen[KEY_COUNT];
    const char *descr; /* the 'descr' string, descr_len bytes */
    size_t descr_len;
    bool fortran;
    int ndim; /* entries in 'shape' (counted beyond CG_MAX_DIMS) */
    int64_t shape[CG_MAX_DIMS];
    bool negative; /* some entry is negative: the first is neg_value */
    int64_t neg_value;
    bool too_large; /* an entry does not fit in int64 */
} header;

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_';
}

static void skip_space(header *h)
{
    while (h->pos < h->n && is_space(h->text[h->pos]))
        h->pos++;
}

static char peek(const header *h)
{
    return h->pos < h->n ? h->text[h->pos] : '\0';
}

static cg_status malformed(const header *h, const char *what)
{
    return load_error(h->path, "malformed header at byte %zu: %s",
                      h->base + h->pos, what);
}

/* A Python string literal without escapes: '...' or "...". */
static cg_status parse_string(header *h, const char **s, size_t *len)
{
    char q = peek(h);
    if (q != '\'' && q != '"')
        return malformed(h, "expected a quoted string");
    size_t start = h->pos + 1, i = start;
    while (i < h->n && h->text[i] != q) {
        if (h->text[i] == '\\' || h->text[i] == '\n')
            break;
        i++;
    }
    if (i >= h->n || h->text[i] != q) {
        h->pos = i < h->n ? i : h->n;
        return malformed(h, h->pos < h->n && h->text[h->pos] == '\\'
                                ? "escape sequences are not supported"
                                : "unterminated string");
    }
    *s = h->text + start;
    *len = i - start;
    h->pos = i + 1;
    return CG_OK;
}

/* A Python int literal with an optional unary sign, for 'shape'. */
static cg_status parse_int(header *h, int64_t *value, bool *overflow)
{
    bool neg = false;
    char c = peek(h);
    if (c == '-' || c == '+') {
        neg = c == '-';
        h->pos++;
        skip_space(h);
    }
    size_t start = h->pos;
    int64_t v = 0;
    bool big = false;
    while (h->pos < h->n && h->text[h->pos] >= '0' && h->text[h->pos] <= '9') {
        int d = h->text[h->pos] - '0';
        if (v > (INT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
        h->pos++;
    }
    size_t len = h->pos - start;
    if (len == 0 || is_ident(peek(h)) || peek(h) == '.') {
        h->pos = start;
        return malformed(h, "expected an integer");
    }
    /* Python forbids leading zeros except in 0, 00, ... */
    if (len > 1 && h->text[start] == '0' && v != 0) {
        h->pos = start;
        return malformed(h, "expected an integer (leading zeros are not "
                            "allowed)");
    }
    *value = neg ? -v : v;
    *overflow = big;
    return CG_OK;
}

/* 'shape': a tuple of ints: (), (5,), (2, 3), (2, 3,). */
static cg_status parse_shape(header *h)
{
    if (peek(h) != '(')
        return malformed(h, "'shape' must be a tuple of integers");
    h->pos++;
    skip_space(h);
    h->ndim = 0;
    bool comma = false;
    cg_status st;
    while (peek(h) != ')') {
        int64_t v = 0;
        bool big = false;
        if ((st = parse_int(h, &v, &big)) != CG_OK)
            return st;
        if (big)
            h->too_large = true;
        else if (v < 0 && !h->negative) {
            h->negative = true;
            h->neg_value = v;
        }
        if (h->ndim < CG_MAX_DIMS)
            h->shape[h->ndim] = v;
        if (h->ndim < INT32_MAX)
            h->ndim++;
        skip_space(h);
        if (peek(h) == ',') {
            comma = true;
            h->pos++;
            skip_space(h);
        } else if (peek(h) != ')') {
            return malformed(h, "expected ',' or ')' in 'shape'");
        }
    }
    if (h->ndim == 1 && !comma)
        return malformed(h, "'shape' is not a tuple (a 1-d shape is "
                            "written (n,))");
    h->pos++;
    return CG_OK;
}

static cg_status parse_value(header *h, int key)
{
    switch (key) {
    case KEY_DESCR:
        if (peek(h) == '[')
            return load_error(h->path, "unsupported dtype: structured "
                                       "arrays are not supported");
        return parse_string(h, &h->descr, &h->descr_len);
    case KEY_FORTRAN: {
        size_t start = h->pos, end = start;
        while (end < h->n && is_ident(h->text[end]))
            end++;
        if (end - start == 4 && memcmp(h->text + start, "True", 4) == 0)
            h->fortran = true;
        else if (end - start == 5 && memcmp(h->text + start, "False", 5) == 0)
            h->fortran = false;
        else
            return malformed(h, "'fortran_order' must be True or False");
        h->pos = end;
        return CG_OK;
    }
    default:
        return parse_shape(h);
    }
}

/* The whole dict. On success every key was seen exactly once. */
static cg_status parse_header(header *h)
{
    cg_status st;
    skip_space(h);
    if (peek(h) != '{')
        return malformed(h, "expected '{'");
    h->pos++;
    skip_space(h);
    while (peek(h) != '}') {
        const char *key;
        size_t key_len;
        if (peek(h) != '\'' && peek(h) != '"')
            return malformed(h, h->pos < h->n ? "expected a quoted key or "
                                                "'}'"
                                              : "unexpected end of header");
        if ((st = parse_string(h, &key, &key_len)) != CG_OK)
            return st;
        int k = 0;
        while (k < KEY_COUNT && !(strlen(key_names[k]) == key_len &&
                                  memcmp(key_names[k], key, key_len) == 0))
            k++;
        char name[160];
        if (k == KEY_COUNT) {
            py_repr(key, key_len, name, sizeof name);
            return load_error(h->path,
                              "header has an unexpected key %s "
                              "(expected 'descr', "
                              "'fortran_order' and 'shape')",
                              name);
        }
        if (h->seen[k])
            return load_error(h->path, "header has the key '%s' twice",
                              key_names[k]);
        h->seen[k] = true;
        skip_space(h);
        if (peek(h) != ':')
            return malformed(h, "expected ':' after a key");
        h->pos++;
        skip_space(h);
        if ((st = parse_value(h, k)) != CG_OK)
            return st;
        skip_space(h);
        if (peek(h) == ',') {
            h->pos++;
            skip_space(h);
        } else if (peek(h) != '}') {
            return malformed(h, h->pos < h->n ? "expected ',' or '}'"
                                              : "unexpected end of header");
        }
    }
    h->pos++;
    skip_space(h);
    if (h->pos < h->n)
        return malformed(h, "unexpected text after '}'");
    for (int k = 0; k < KEY_COUNT; k++)
        if (!h->seen[k])
            return load_error(h->path, "header has no '%s' key", key_names[k]);
    return CG_OK;
}

/* Checks the parsed header against what cgrad reads: dtype, order, shape,
 * and the data size in bytes (overflow-checked). */
static cg_status check_header(const header *h, cg_dtype *dt, int64_t *nbytes)
{
    size_t i = 0, count = sizeof npy_dtypes / sizeof npy_dtypes[0];
    while (i < count &&
           !(strlen(npy_dtypes[i].descr) == h->descr_len &&
             memcmp(npy_dtypes[i].descr, h->descr, h->descr_len) == 0))
        i++;
    if (i == count) {
        char name[160];
        py_repr(h->descr, h->descr_len, name, sizeof name);
        return load_error(h->path,
                          "unsupported dtype %s (cgrad reads "
                          "little-endian '<f4', '<f8', '<c8', "
                          "'<c16')",
                          name);
    }
    if (h->fortran)
        return load_error(h->path, "Fortran-ordered arrays are not "
                                   "supported");
    if (h->ndim > CG_MAX_DIMS)
        return load_error(h->path,
                          "the shape has %d dimensions, but cgrad "
                          "tensors have at most %d",
                          h->ndim, CG_MAX_DIMS);
    if (h->negative)
        return load_error(h->path,
                          "the shape has a negative dimension "
                          "%lld",
                          (long long)h->neg_value);
    int64_t n = (int64_t)cg_dtype_size(npy_dtypes[i].dtype);
    for (int d = 0; d < h->ndim && !h->too_large; d++)
        if (!cg__mul_overflow(n, h->shape[d], &n))
            return load_error(h->path, "the shape is too large: its size "
                                       "in bytes overflows 64 bits");
    if (h->too_large)
        return load_error(h->path, "the shape is too large: its size in "
                                   "bytes overflows 64 bits");
    *dt = npy_dtypes[i].dtype;
    *nbytes = n;
    return CG_OK;
}

/* ---- load --------------------------------------------------------------- */

/* Reads the preamble: magic, version, header length. */
static cg_status read_preamble(int fd, const char *path, size_t *header_len,
                               size_t *header_start)
{
    unsigned char pre[12];
    size_t got = 0;
    cg_status st = read_full(fd, pre, 8, &got, path);
    if (st != CG_OK)
        return st;
    if (got == 0)
        return load_error(path, "the file is empty");
    size_t cmp = got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN;
    if (memcmp(pre, NPY_MAGIC, cmp) != 0) {
        char seen[64];
        bytes_repr(pre, cmp, seen, sizeof seen);
        return load_error(path,
                          "not a .npy file: the magic string is %s, "
                          "expected b'\\x93NUMPY'",
                          seen);
    }
    if (got < 8)
        return load_error(path,
                          "the file is truncated: expected a 10-byte "
                          "preamble, found %zu bytes",
                          got);
    int major = pre[6], minor = pre[7];
    size_t len_bytes;
    if (major == 1 && minor == 0)
        len_bytes = 2;
    else if ((major == 2 || major == 3) && minor == 0)
        len_bytes = 4;
    else
        return load_error(path,
                          "unsupported .npy format version %d.%d "
                          "(cgrad reads 1.0, 2.0 and 3.0)",
                          major, minor);
    if ((st = read_full(fd, pre + 8, len_bytes, &got, path)) != CG_OK)
        return st;
    if (got < len_bytes)
        return load_error(path,
                          "the file is truncated: expected a "
                          "%zu-byte preamble, found %zu bytes",
                          8 + len_bytes, 8 + got);
    uint32_t len = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
    if (len_bytes == 4)
        len |= (uint32_t)pre[10] << 16 | (uint32_t)pre[11] << 24;
    if (len > NPY_HEADER_MAX)
        return load_error(path,
                          "the header is %lu bytes long, but cgrad "
                          "reads headers of at most %d bytes",
                          (unsigned long)len, NPY_HEADER_MAX);
    *header_len = len;
    *header_start = 8 + len_bytes;
    return CG_OK;
}

cg_status cg_load_npy(const char *path, cg_tensor **out)
{
    if (!path)
        return cg__error_null("path");
    if (!out)
        return cg__error_null("out");

    cg_status st = CG_OK;
    char *text = NULL;
    cg_tensor *t = NULL;
    size_t header_len = 0, header_start = 0, got = 0;
    header h = {.path = path};
    cg_dtype dt = CG_FLOAT32;
    int64_t nbytes = 0;
    unsigned char extra;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return io_error(errno, path);

    /* A directory opens fine on POSIX; Python's open() says EISDIR. */
    if (fstat(fd, &sb) != 0) {
        st = io_error(errno, path);
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        st = io_error(EISDIR, path);
        goto fail;
    }

    if ((st = read_preamble(fd, path, &header_len, &header_start)) != CG_OK)
        goto fail;
    text = cg__malloc(header_len);
    if (!text) {
        st = cg__error_nomem(header_len);
        goto fail;
    }
    if ((st = read_full(fd, text, header_len, &got, path)) != CG_OK)
        goto fail;
    if (got < header_len) {
        st = load_error(path,
                        "the file is truncated: expected a %zu-byte "
                        "header, found %zu bytes",
                        header_len, got);
        goto fail;
    }
    if (header_len == 0 || text[header_len - 1] != '\n') {
        st = load_error(path, "the header is not terminated by a newline");
        goto fail;
    }

    h.text = text;
    h.n = header_len;
    h.base = header_start;
    if ((st = parse_header(&h)) != CG_OK ||
        (st = check_header(&h, &dt, &nbytes)) != CG_OK)
        goto fail;

    /* Regular files are measured before any allocation, so a header that
     * promises more data than the file holds costs nothing. */
    if (S_ISREG(sb.st_mode)) {
        int64_t found =
            (int64_t)sb.st_size - (int64_t)(header_start + header_len);
        if (found < 0)
            found = 0;
        if (found < nbytes) {
            st = load_error(path,
                            "the file is truncated: expected %lld "
                            "bytes of data, found %lld",
                            (long long)nbytes, (long long)found);
            goto fail;
        }
        if (found > nbytes) {
            st = load_error(path,
                            "%lld unexpected bytes after the data "
                            "(expected %lld bytes of data, found "
                            "%lld)",
                            (long long)(found - nbytes), (long long)nbytes,
                            (long long)found);
            goto fail;
        }
    }

    if ((st = cg__tensor_new(h.shape, h.ndim, dt, &t)) != CG_OK)
        goto fail;
    if ((st = read_full(fd, t->storage->data, (size_t)nbytes, &got, path)) !=
        CG_OK)
        goto fail;
    if (got < (size_t)nbytes) {
        st = load_error(path,
                        "the file is truncated: expected %lld bytes "
                        "of data, found %zu",
                        (long long)nbytes, got);
        goto fail;
    }
    if ((st = read_full(fd, &extra, 1, &got, path)) != CG_OK)
        goto fail;
    if (got != 0) {
        st = load_error(path,
                        "unexpected bytes after the data (expected "
                        "%lld bytes of data, found more)",
                        (long long)nbytes);
        goto fail;
    }
    if (!host_is_little_endian())
        swap_components(t->storage->data, (size_t)nbytes, component_size(dt));

    close(fd);
    cg__free(text);
    *out = t;
    return CG_OK;

fail:
    close(fd);
    cg__free(text);
    cg_tensor_release(t);
    return st;
}

/* ---- save --------------------------------------------------------------- */

/* The header numpy 1.24 writes for a C-ordered array, preamble included;
 * returns its length (a multiple of NPY_ALIGN). */
static size_t format_header(const cg_tensor *t, char *buf)
{
    static const char *const descr[CG_DTYPE_COUNT] = {
        [CG_FLOAT32] = "<f4",
        [CG_FLOAT64] = "<f8",
        [CG_COMPLEX64] = "<c8",
        [CG_COMPLEX128] = "<c16",
    };
    char dict[CG_MAX_DIMS * 24 + 128];
    size_t n = (size_t)snprintf(dict, sizeof dict,
                                "{'descr': '%s', 'fortran_order': False, "
                                "'shape': (",
                                descr[t->dtype]);
    for (int d = 0; d < t->ndim; d++)
        n += (size_t)snprintf(dict + n, sizeof dict - n, "%s%lld",
                              d ? ", " : "", (long long)t->shape[d]);
    n += (size_t)snprintf(dict + n, sizeof dict - n, "%s), }",
                          t->ndim == 1 ? "," : "");
    /* Spare room so the first dimension can grow in place (numpy). */
    if (t->ndim > 0) {
        char digits[24];
        int len =
            snprintf(digits, sizeof digits, "%lld", (long long)t->shape[0]);
        for (int i = len; i < NPY_GROWTH_DIGITS; i++)
            dict[n++] = ' ';
    }
    /* Pad with spaces so magic + version + length + header + '\n' is a
     * multiple of 64; numpy adds a whole 64 when it already is. */
    size_t hlen = n + 1;
    size_t pad = NPY_ALIGN - (NPY_MAGIC_LEN + 2 + 2 + hlen) % NPY_ALIGN;
    size_t field = hlen + pad;
    size_t k = 0;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    k += NPY_MAGIC_LEN;
    buf[k++] = 1;
    buf[k++] = 0;
    buf[k++] = (char)(field & 0xff);
    buf[k++] = (char)(field >> 8);
    memcpy(buf + k, dict, n);
    k += n;
    memset(buf + k, ' ', pad);
    k += pad;
    buf[k++] = '\n';
    return k;
}

cg_status cg_save_npy(const cg_tensor *t, const char *path)
{
    if (!t)
        return cg__error_null("tensor");
    if (!path)
        return cg__error_null("path");
    cg_status st = cg__check_dtype(t->dtype);
    if (st != CG_OK)
        return st;

    /* At most 16 dims of 19 digits each plus fixed text: well under 1 KiB,
     * and a v1.0 header (u16 length) always suffices. */
    char head[1024];
    size_t head_len = format_header(t, head);

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return io_error(errno, path);
    if ((st = write_full(fd, head, head_len, path)) != CG_OK)
        goto fail;

    int64_t numel = cg_tensor_numel(t);
    size_t el = cg__elsize(t);
    bool little = host_is_little_endian();
    if (numel > 0 && cg_tensor_is_contiguous(t) && little) {
        st = write_full(fd, cg_tensor_data(t), (size_t)numel * el, path);
        if (st != CG_OK)
            goto fail;
    } else if (numel > 0) {
        /* Gather the elements in row-major order through a small buffer. */
        unsigned char buf[8192];
        size_t fill = 0;
        cg_iter it;
        cg__iter_init(&it, t);
        do {
            memcpy(buf + fill, cg__elem_ptr(t, it.pos), el);
            fill += el;
            if (fill + el > sizeof buf) {
                if (!little)
                    swap_components(buf, fill, component_size(t->dtype));
                if ((st = write_full(fd, buf, fill, path)) != CG_OK)
                    goto fail;
                fill = 0;
            }
        } while (cg__iter_next(&it));
        if (!little)
            swap_components(buf, fill, component_size(t->dtype));
        if (fill > 0 && (st = write_full(fd, buf, fill, path)) != CG_OK)
            goto fail;
    }
    if (close(fd) != 0)
        return io_error(errno, path);
    return CG_OK;

fail:
    close(fd);
    return st;
}
