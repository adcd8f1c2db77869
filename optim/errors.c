/*
 * errors.c -- how optim/ reports failures: the status and PyTorch's
 * message in the thread's last error, and numbers written as Python
 * writes them, since PyTorch's optim messages are Python format strings
 * ("Invalid learning rate: {}".format(-1.0) is "Invalid learning rate:
 * -1.0", and 1e-08 keeps Python's two-digit exponent).
 */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The core's error setter (core/error.c). cgrad.h has no public way yet
 * to set the last error from outside the core; until it does, optim/
 * declares the core's function here (it is in the same library). This is
 * the only private core symbol optim/ uses. */
cg_status cg__error(cg_status st, const char *fmt, ...);

cg_status cg__optim_error(cg_status st, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cg__error(st, "%s", msg);
}

cg_status cg__optim_nomem(size_t bytes)
{
    return cg__optim_error(CG_ERR_NOMEM,
                           "DefaultCPUAllocator: can't allocate memory: you "
                           "tried to allocate %zu bytes.",
                           bytes);
}

cg_status cg__optim_null(const char *what)
{
    return cg__optim_error(CG_ERR_MISUSE, "%s must not be NULL", what);
}

cg_status cg__optim_check_index(int i, int n)
{
    if (i < 0 || i >= n)
        return cg__optim_error(CG_ERR_INDEX, "list index out of range");
    return CG_OK;
}

cg_status cg__optim_key_error(const char *key)
{
    return cg__optim_error(CG_ERR_INDEX, "'%s'", key);
}

int64_t cg__floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* repr(float): the shortest digit string that reads back as v (the
 * correctly rounded %.*e of increasing precision), laid out by Python's
 * rule: positional when -4 < decpt <= 16, else d.ddde+XX. */
char *cg__pyfloat(double v, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return buf;
    }
    if (isinf(v)) {
        snprintf(buf, size, v < 0 ? "-inf" : "inf");
        return buf;
    }
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* Take the sign, the digits and the exponent; the radix character is
     * the locale's, so it is skipped rather than matched. */
    bool neg = tmp[0] == '-';
    char digits[24];
    int nd = 0;
    const char *s = tmp + (neg ? 1 : 0);
    for (; *s && *s != 'e' && *s != 'E'; s++)
        if (*s >= '0' && *s <= '9' && nd < (int)sizeof digits - 1)
            digits[nd++] = *s;
    int exp10 = (*s == 'e' || *s == 'E') ? atoi(s + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    if (v == 0.0)
        exp10 = 0;
    int decpt = exp10 + 1;

    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int i = 0; i < -decpt; i++)
                out[o++] = '0';
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
        } else if (decpt >= nd) {
            for (int i = 0; i < nd; i++)
                out[o++] = digits[i];
            for (int i = nd; i < decpt; i++)
                out[o++] = '0';
            out[o++] = '.';
            out[o++] = '0';
        } else {
            for (int i = 0; i < decpt; i++)
                out[o++] = digits[i];
            out[o++] = '.';
            for (int i = decpt; i < nd; i++)
                out[o++] = digits[i];
        }
        out[o] = '\0';
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", exp10 < 0 ? '-' : '+',
                 exp10 < 0 ? -exp10 : exp10);
    }
    snprintf(buf, size, "%s", out);
    return buf;
}

/* ---- strided walks and in-place writes -------------------------------- */

void cg__walk_init(cg__walk *w, const cg_tensor *t)
{
    w->ndim = cg_tensor_dim(t);
    w->contiguous = cg_tensor_is_contiguous(t);
    w->off = 0;
    const int64_t *shape = cg_tensor_shape(t);
    const int64_t *strides = cg_tensor_strides(t);
    for (int d = 0; d < w->ndim; d++) {
        w->shape[d] = shape[d];
        w->strides[d] = strides[d];
        w->idx[d] = 0;
    }
}

/* Components per pool range of a contiguous update. */
enum { UPDATE_GRAIN = 1 << 14 };

typedef struct update_job {
    cg__update_body body;
    void *ctx;
    char *p;
    const char *g;
    size_t csz; /* bytes per component */
} update_job;

static void update_range(void *ctx, int64_t begin, int64_t end)
{
    const update_job *u = ctx;
    u->body(u->ctx, u->p + (size_t)begin * u->csz,
            u->g + (size_t)begin * u->csz, begin, end - begin);
}

bool cg__use_fma(void)
{
    return strcmp(cg_get_cpu_capability(), "DEFAULT") != 0;
}

void cg__update_elementwise(cg_tensor *param, const cg_tensor *grad,
                            const cg__update_kernel *kernel, void *ctx)
{
    const cg__update_body body =
        kernel->fma && cg__use_fma() ? kernel->fma : kernel->plain;
    const cg_dtype dt = cg_tensor_dtype(param);
    const int64_t nc = cg__ncomp(dt);
    const size_t esz = cg_dtype_size(dt);
    const int64_t n = cg_tensor_numel(param);
    char *p = cg_tensor_data(param);
    const char *g = cg_tensor_data(grad);
    if (cg_tensor_is_contiguous(param) && cg_tensor_is_contiguous(grad)) {
        update_job u = {body, ctx, p, g, esz / (size_t)nc};
        /* cannot fail: the body is set and the grain positive */
        (void)cg_parallel_for(0, n * nc, UPDATE_GRAIN, update_range, &u);
        return;
    }
    cg__walk wp, wg;
    cg__walk_init(&wp, param);
    cg__walk_init(&wg, grad);
    for (int64_t i = 0; i < n; i++) {
        body(ctx, p + (size_t)wp.off * esz, g + (size_t)wg.off * esz, i * nc,
             nc);
        cg__walk_next(&wp);
        cg__walk_next(&wg);
    }
}

cg_status cg__check_no_overlap(const cg_tensor *t)
{
    int nd = cg_tensor_dim(t);
    const int64_t *shape = cg_tensor_shape(t);
    const int64_t *strides = cg_tensor_strides(t);
    for (int d = 0; d < nd; d++)
        if (strides[d] == 0 && shape[d] > 1)
            return cg__optim_error(
                CG_ERR_RUNTIME,
                "unsupported operation: more than one element of the "
                "written-to tensor refers to a single memory location. "
                "Please clone() the tensor before performing the "
                "operation.");
    return CG_OK;
}

cg_status cg__bump_version(cg_tensor *t)
{
    if (cg_tensor_numel(t) == 0)
        return CG_OK;
    int64_t index[CG_MAX_DIMS] = {0};
    double re = 0.0, im = 0.0;
    cg_status st = cg_tensor_get(t, index, &re, &im);
    if (st == CG_OK)
        st = cg_tensor_set(t, index, re, im);
    return st;
}
