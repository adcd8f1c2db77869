/*
 * print.c -- repr(tensor): the text PyTorch 1.13 prints for a strided CPU
 * tensor (torch/_tensor_str.py with the default print options: precision
 * 4, threshold 1000, edgeitems 3, linewidth 80, automatic scientific
 * mode), byte for byte, for float32, float64, complex64 and complex128,
 * any rank (0..16) and any strides.
 *
 * The rules (TENSOR_PRINT.md has them with examples):
 *   - A formatter is chosen from the finite non-zero values the text will
 *     show, as doubles: int mode (every value integral), fixed ("%.4f") or
 *     scientific ("%.4e"), and a column width. Complex tensors get one
 *     formatter for the real parts and one for the imaginary parts.
 *   - Above 1000 elements the tensor is summarised: along every dimension
 *     longer than 6 only the first and last 3 indices are shown, with " ..."
 *     in a row or "..." between blocks; the formatter sees only what is
 *     shown.
 *   - Rows wrap at 80 columns; block separators carry one newline per
 *     remaining dimension; the indent grows by one per nesting level.
 *   - Suffixes (dtype=, size= for empty tensors, grad_fn=<Name> or
 *     requires_grad=True) follow with torch's line-length arithmetic, and
 *     a Parameter is preceded by "Parameter containing:\n".
 *
 * Left out: torch.set_printoptions (other precisions, widths, sci_mode
 * forced on or off), integer/bool/half dtypes, named tensors, devices and
 * sparse layouts, none of which cgrad has. Numbers are converted by the C
 * library's printf, which must round correctly (glibc and the other major
 * libcs do, as Python does); its decimal point follows LC_NUMERIC, so the
 * one it uses is probed and replaced by '.', which Python always prints.
 */
#include "tensor_internal.h"
#include "autograd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* torch's default print options */
enum {
    PRECISION = 4,    /* digits after the point, fixed and scientific */
    THRESHOLD = 1000, /* summarise above this many elements */
    EDGEITEMS = 3,    /* indices kept at each end of a summarised dim */
    LINEWIDTH = 80,   /* characters per line */
};

static const char PREFIX[] = "tensor(";
/* continuation lines of the body and the suffixes line up after PREFIX */
#define INDENT ((int)sizeof PREFIX - 1)

/* Longest text one value can format to: "%.4f" of DBL_MAX has 309 integer
 * digits. Only int and fixed mode print values that large in principle;
 * the mode rules keep them below 1e8, this bound keeps the code honest. */
#define VALUE_MAX 400

/* ---- a growing text buffer ----------------------------------------------- */

/* Appends never fail loudly: the first allocation failure is remembered,
 * later appends do nothing, and the caller checks once at the end. */
typedef struct text {
    char *data;          /* len characters and a NUL, or NULL */
    size_t len;          /* characters written so far */
    size_t cap;          /* bytes allocated */
    size_t failed_bytes; /* non-zero: an allocation of this size failed */
} text;

static bool text_reserve(text *tx, size_t extra)
{
    if (tx->failed_bytes)
        return false;
    if (extra > SIZE_MAX / 2 - tx->len) {
        tx->failed_bytes = SIZE_MAX;
        return false;
    }
    size_t need = tx->len + extra + 1; /* + NUL */
    if (need <= tx->cap)
        return true;
    size_t cap = tx->cap ? tx->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = tx->data ? cg__realloc(tx->data, cap) : cg__malloc(cap);
    if (!p) {
        tx->failed_bytes = cap;
        return false;
    }
    tx->data = p;
    tx->cap = cap;
    return true;
}

static void text_append(text *tx, const char *s, size_t n)
{
    if (!text_reserve(tx, n))
        return;
    memcpy(tx->data + tx->len, s, n);
    tx->len += n;
    tx->data[tx->len] = '\0';
}

static void text_puts(text *tx, const char *s)
{
    text_append(tx, s, strlen(s));
}

static void text_repeat(text *tx, char c, size_t n)
{
    if (!text_reserve(tx, n))
        return;
    memset(tx->data + tx->len, c, n);
    tx->len += n;
    tx->data[tx->len] = '\0';
}

/* ---- the number formatter ------------------------------------------------ */

/* How every value of one part (real or imaginary) is written. */
typedef struct formatter {
    bool int_mode; /* all shown finite non-zero values are integral: "3." */
    bool sci_mode; /* "%.4e" */
    int width;     /* column width: the longest formatted value, >= 1 */
    char point[8]; /* printf's decimal point ("." unless LC_NUMERIC says
                      otherwise), to be written as "." */
} formatter;

/* What the mode decision needs from the finite non-zero values. */
typedef struct value_stats {
    bool any;       /* at least one finite non-zero value */
    bool integral;  /* every one of them equals its ceiling */
    double max_abs; /* largest |v| */
    double min_abs; /* smallest |v| */
} value_stats;

/* Writes v as the formatter's mode does, without padding, into buf
 * (VALUE_MAX bytes); returns the length. nan and inf are spelled as Python
 * spells them in every mode ("nan" whatever its sign bit). */
static int format_value(const formatter *f, double v, char *buf)
{
    const char *word = NULL;
    if (isnan(v))
        word = "nan";
    else if (isinf(v))
        word = v < 0 ? "-inf" : "inf";
    if (word) {
        size_t n = strlen(word);
        memcpy(buf, word, n + 1);
        return (int)n;
    }
    int n;
    if (f->sci_mode)
        n = snprintf(buf, VALUE_MAX, "%.*e", PRECISION, v);
    else if (f->int_mode) /* a float tensor: "3." even when integral */
        n = snprintf(buf, VALUE_MAX, "%.0f.", v);
    else
        n = snprintf(buf, VALUE_MAX, "%.*f", PRECISION, v);
    if (n < 0) /* an encoding error, impossible for %e and %f */
        n = 0;
    if (n >= VALUE_MAX) /* cut, impossible too: see VALUE_MAX */
        n = VALUE_MAX - 1;
    buf[n] = '\0';
    if (strcmp(f->point, ".") != 0) {
        /* "%.0f." has no locale point, "%.4f" and "%.4e" have one */
        char *at = strstr(buf, f->point);
        if (at) {
            size_t pl = strlen(f->point);
            *at = '.';
            memmove(at + 1, at + pl, (size_t)n - (size_t)(at - buf) - pl + 1);
            n -= (int)pl - 1;
        }
    }
    return n;
}

/* printf's decimal point under the current LC_NUMERIC, found by printing
 * 0.5 ("0.5" in the "C" locale, "0,5" in many others). */
static void probe_point(char *point, size_t size)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%.1f", 0.5);
    if (n >= 3 && n < (int)sizeof buf && (size_t)(n - 2) < size &&
        buf[0] == '0' && buf[n - 1] == '5') {
        memcpy(point, buf + 1, (size_t)(n - 2));
        point[n - 2] = '\0';
    } else {
        snprintf(point, size, ".");
    }
}

static void stats_add(value_stats *s, double v)
{
    if (!isfinite(v) || v == 0.0)
        return;
    double a = fabs(v);
    if (!s->any) {
        s->any = true;
        s->integral = true;
        s->max_abs = s->min_abs = a;
    }
    if (a > s->max_abs)
        s->max_abs = a;
    if (a < s->min_abs)
        s->min_abs = a;
    if (v != ceil(v))
        s->integral = false;
}

/* The mode, from the statistics of all shown values. With no finite
 * non-zero value (all zeros, all nan) torch keeps int mode, width 1. */
static void formatter_init(formatter *f, const value_stats *s)
{
    f->int_mode = true;
    f->sci_mode = false;
    f->width = 1;
    probe_point(f->point, sizeof f->point);
    if (!s->any)
        return;
    f->int_mode = s->integral;
    /* an integral tensor has no tiny values, so only a fractional one
     * switches to scientific for min < 1e-4 */
    f->sci_mode = s->max_abs / s->min_abs > 1000.0 || s->max_abs > 1.0e8 ||
                  (!f->int_mode && s->min_abs < 1.0e-4);
}

/* The width grows to the longest finite non-zero value in the chosen mode;
 * zeros and non-finite values may come out wider and are not cut. */
static void formatter_widen(formatter *f, double v)
{
    if (!isfinite(v) || v == 0.0)
        return;
    char buf[VALUE_MAX];
    int n = format_value(f, v, buf);
    if (n > f->width)
        f->width = n;
}

/* ---- walking the shown elements ------------------------------------------ */

/* State of one repr: the tensor, its formatters and the output. */
typedef struct printer {
    const cg_tensor *t;
    bool is_complex;
    bool summarize;   /* numel > THRESHOLD */
    formatter re;     /* real values, or real parts */
    formatter im;     /* imaginary parts (complex tensors only) */
    int64_t elem_len; /* one element plus ", " in a row */
    text out;         /* the text so far */
} printer;

/* Number of entries shown along `dim`, one of them possibly the ellipsis. */
static int64_t shown_count(const printer *p, int dim)
{
    int64_t size = p->t->shape[dim];
    return p->summarize && size > 2 * EDGEITEMS ? 2 * EDGEITEMS + 1 : size;
}

/* The index along `dim` of shown entry k, or -1 for the ellipsis. */
static int64_t shown_index(const printer *p, int dim, int64_t k)
{
    int64_t size = p->t->shape[dim];
    if (!(p->summarize && size > 2 * EDGEITEMS) || k < EDGEITEMS)
        return k;
    if (k == EDGEITEMS)
        return -1;
    return size - (2 * EDGEITEMS + 1 - k);
}

typedef void (*visit_fn)(void *ctx, double re, double im);

/* Calls fn on every shown element below dimension `dim`, whose first
 * element sits at storage index `pos`, in row-major order. */
static void walk_shown(const printer *p, int dim, int64_t pos, visit_fn fn,
                       void *ctx)
{
    const cg_tensor *t = p->t;
    if (dim == t->ndim) {
        double re, im;
        cg__load(t, pos, &re, &im);
        fn(ctx, re, im);
        return;
    }
    int64_t n = shown_count(p, dim);
    for (int64_t k = 0; k < n; k++) {
        int64_t i = shown_index(p, dim, k);
        if (i >= 0)
            walk_shown(p, dim + 1, pos + i * t->strides[dim], fn, ctx);
    }
}

/* Pass 1 gathers statistics, pass 2 widths (it needs the mode). */
typedef struct formatter_pass {
    printer *p;
    value_stats re, im;
} formatter_pass;

static void visit_stats(void *ctx, double re, double im)
{
    formatter_pass *fp = ctx;
    stats_add(&fp->re, re);
    stats_add(&fp->im, im);
}

static void visit_width(void *ctx, double re, double im)
{
    formatter_pass *fp = ctx;
    formatter_widen(&fp->p->re, re);
    if (fp->p->is_complex)
        formatter_widen(&fp->p->im, im);
}

static void build_formatters(printer *p)
{
    formatter_pass fp = {p, {0}, {0}};
    walk_shown(p, 0, p->t->offset, visit_stats, &fp);
    formatter_init(&p->re, &fp.re);
    formatter_init(&p->im, &fp.im);
    walk_shown(p, 0, p->t->offset, visit_width, &fp);
    p->elem_len = p->re.width + 2;
    if (p->is_complex)
        p->elem_len += p->im.width + 1; /* the imaginary part and its 'j' */
}

/* ---- the body ------------------------------------------------------------ */

/* One element: the real part padded to its column; for complex values the
 * imaginary part unpadded, with its sign (or '+') and a 'j'. */
static void put_element(printer *p, int64_t pos)
{
    double re, im;
    cg__load(p->t, pos, &re, &im);
    char buf[VALUE_MAX];
    int n = format_value(&p->re, re, buf);
    if (n < p->re.width)
        text_repeat(&p->out, ' ', (size_t)(p->re.width - n));
    text_append(&p->out, buf, (size_t)n);
    if (!p->is_complex)
        return;
    n = format_value(&p->im, im, buf);
    if (buf[0] != '+' && buf[0] != '-')
        text_append(&p->out, "+", 1);
    text_append(&p->out, buf, (size_t)n);
    text_append(&p->out, "j", 1);
}

/* The dimensions from `dim` on, first element at storage index `pos`,
 * laid out with the given indent (the column of its '['). Recursion depth
 * is at most CG_MAX_DIMS. */
static void put_block(printer *p, int dim, int64_t pos, int indent)
{
    const cg_tensor *t = p->t;
    if (dim == t->ndim) { /* a 0-d tensor */
        put_element(p, pos);
        return;
    }
    int64_t n = shown_count(p, dim);
    int rest = t->ndim - dim; /* dimensions left, this one included */
    text_append(&p->out, "[", 1);
    if (rest == 1) {
        /* a row: cut into lines of per_line entries, " ..." counting as
         * one */
        int64_t per_line = (LINEWIDTH - indent) / p->elem_len;
        if (per_line < 1)
            per_line = 1;
        for (int64_t k = 0; k < n; k++) {
            if (k > 0 && k % per_line == 0) {
                text_append(&p->out, ",\n", 2);
                text_repeat(&p->out, ' ', (size_t)indent + 1);
            } else if (k > 0) {
                text_append(&p->out, ", ", 2);
            }
            int64_t i = shown_index(p, dim, k);
            if (i < 0)
                text_append(&p->out, " ...", 4);
            else
                put_element(p, pos + i * t->strides[dim]);
        }
    } else {
        /* blocks: "," then one newline per dimension below this one */
        for (int64_t k = 0; k < n; k++) {
            if (k > 0) {
                text_append(&p->out, ",", 1);
                text_repeat(&p->out, '\n', (size_t)rest - 1);
                text_repeat(&p->out, ' ', (size_t)indent + 1);
            }
            int64_t i = shown_index(p, dim, k);
            if (i < 0)
                text_append(&p->out, "...", 3);
            else
                put_block(p, dim + 1, pos + i * t->strides[dim], indent + 1);
        }
    }
    text_append(&p->out, "]", 1);
}

/* ---- suffixes ------------------------------------------------------------ */

/* Appends ", " + head + mid + tail, or moves it to a new line indented by
 * INDENT when torch's running line length `last` says it does not fit.
 * `last` starts as the length of the body's last line + 2 (torch's
 * arithmetic, kept as is) and, after a line break, is not given the +2. */
static void put_suffix(text *out, size_t *last, const char *head,
                       const char *mid, const char *tail)
{
    size_t n = strlen(head) + strlen(mid) + strlen(tail);
    if (*last + n + 2 > LINEWIDTH) {
        text_append(out, ",\n", 2);
        text_repeat(out, ' ', INDENT);
        *last = INDENT + n;
    } else {
        text_append(out, ", ", 2);
        *last += n + 2;
    }
    text_puts(out, head);
    text_puts(out, mid);
    text_puts(out, tail);
}

/* Python's text of a shape tuple: "(2, 0)", "(0,)", "()". */
static void format_size(const cg_tensor *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "(");
    for (int d = 0; d < t->ndim && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? ", " : "",
                              (long long)t->shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, t->ndim == 1 ? ",)" : ")");
}

/* ---- the whole text ------------------------------------------------------ */

static cg_status render(const cg_tensor *t, bool newline, text *out)
{
    if (!cg__dtype_valid(t->dtype) || t->ndim < 0 || t->ndim > CG_MAX_DIMS ||
        !t->storage)
        return cg__error(CG_ERR_RUNTIME,
                         "cg_tensor_repr: the tensor's header is corrupt "
                         "(dtype %d, %d dimensions)",
                         (int)t->dtype, t->ndim);

    printer p = {0};
    p.t = t;
    p.is_complex = cg_dtype_is_complex(t->dtype);
    int64_t numel = cg_tensor_numel(t);
    p.summarize = numel > THRESHOLD;

    if (t->is_parameter)
        text_puts(&p.out, "Parameter containing:\n");
    text_puts(&p.out, PREFIX);
    if (numel == 0) {
        text_puts(&p.out, "[]");
    } else {
        build_formatters(&p);
        put_block(&p, 0, t->offset, INDENT);
    }
    if (p.out.failed_bytes)
        goto fail;

    /* the length of the last line, + 2 */
    size_t line_start = 0;
    for (size_t i = p.out.len; i > 0; i--) {
        if (p.out.data[i - 1] == '\n') {
            line_start = i;
            break;
        }
    }
    size_t last = p.out.len - line_start + 2;

    if (numel == 0) {
        /* torch shows the size unless it is (0,), and any dtype other than
         * the default float dtype (so complex64 too) */
        if (t->ndim != 1) {
            char size[32 * CG_MAX_DIMS];
            format_size(t, size, sizeof size);
            put_suffix(&p.out, &last, "size=", size, "");
        }
        if (t->dtype != CG_FLOAT32)
            put_suffix(&p.out, &last, "dtype=torch.", cg_dtype_name(t->dtype),
                       "");
    } else if (t->dtype != CG_FLOAT32 && t->dtype != CG_COMPLEX64) {
        /* float32 and complex64 are torch's default float and complex
         * dtypes */
        put_suffix(&p.out, &last, "dtype=torch.", cg_dtype_name(t->dtype), "");
    }
    const char *grad_fn = cg__grad_fn_name(t);
    if (grad_fn)
        put_suffix(&p.out, &last, "grad_fn=<", grad_fn, ">");
    else if (t->requires_grad)
        put_suffix(&p.out, &last, "requires_grad=True", "", "");
    text_puts(&p.out, ")");
    if (newline)
        text_puts(&p.out, "\n");
    if (p.out.failed_bytes)
        goto fail;
    *out = p.out;
    return CG_OK;

fail:
    cg__free(p.out.data);
    return cg__error_nomem(p.out.failed_bytes);
}

cg_status cg_tensor_repr(const cg_tensor *t, char *buf, size_t size,
                         size_t *len)
{
    if (!t)
        return cg__error_null("tensor");
    if (!buf && size > 0)
        return cg__error_null("buf");
    text tx;
    cg_status st = render(t, false, &tx);
    if (st != CG_OK)
        return st;
    if (size > 0) {
        size_t n = tx.len < size - 1 ? tx.len : size - 1;
        memcpy(buf, tx.data, n);
        buf[n] = '\0';
    }
    if (len)
        *len = tx.len;
    cg__free(tx.data);
    return CG_OK;
}

cg_status cg_tensor_print(const cg_tensor *t, FILE *f)
{
    if (!t)
        return cg__error_null("tensor");
    if (!f)
        return cg__error_null("f");
    text tx;
    cg_status st = render(t, true, &tx);
    if (st != CG_OK)
        return st;
    size_t written = fwrite(tx.data, 1, tx.len, f);
    cg__free(tx.data);
    if (written != tx.len)
        return cg__error(CG_ERR_IO,
                         "cg_tensor_print: could not write %zu bytes to the "
                         "stream",
                         tx.len);
    return CG_OK;
}

/* ---- Python's repr(float), for messages that quote a float -------- */

size_t cg_format_float(double v, char *buf, size_t size)
{
    char out[48];
    size_t n = 0;
    if (isnan(v)) {
        n = (size_t)snprintf(out, sizeof out, "nan");
    } else if (isinf(v)) {
        n = (size_t)snprintf(out, sizeof out, v < 0 ? "-inf" : "inf");
    } else {
        /* the shortest %e form that reads back as v */
        char e[40];
        for (int prec = 0; prec < 17; prec++) {
            snprintf(e, sizeof e, "%.*e", prec, v);
            if (strtod(e, NULL) == v)
                break;
        }
        const char *p = e;
        bool neg = *p == '-';
        if (neg)
            p++;
        char digits[24];
        int nd = 0;
        for (; *p && *p != 'e'; p++)
            if (*p != '.')
                digits[nd++] = *p;
        int exp10 = atoi(p + 1);
        while (nd > 1 && digits[nd - 1] == '0')
            nd--;
        if (neg)
            out[n++] = '-';
        if (exp10 < -4 || exp10 >= 16) { /* 1e-05, 1.5e+16 */
            out[n++] = digits[0];
            if (nd > 1) {
                out[n++] = '.';
                memcpy(out + n, digits + 1, (size_t)nd - 1);
                n += (size_t)nd - 1;
            }
            n += (size_t)snprintf(out + n, sizeof out - n, "e%c%02d",
                                  exp10 < 0 ? '-' : '+',
                                  exp10 < 0 ? -exp10 : exp10);
        } else if (exp10 < 0) { /* 0.001 */
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -exp10 - 1; i++)
                out[n++] = '0';
            memcpy(out + n, digits, (size_t)nd);
            n += (size_t)nd;
        } else { /* 2.0, 123.25, 1e15 as 1000000000000000.0 */
            for (int i = 0; i <= exp10; i++)
                out[n++] = i < nd ? digits[i] : '0';
            out[n++] = '.';
            if (nd > exp10 + 1) {
                memcpy(out + n, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
                n += (size_t)(nd - exp10 - 1);
            } else {
                out[n++] = '0';
            }
        }
        out[n] = '\0';
    }
    if (buf && size) {
        size_t k = n < size - 1 ? n : size - 1;
        memcpy(buf, out, k);
        buf[k] = '\0';
    }
    return n;
}
