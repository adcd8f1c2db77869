/*
 * fuzz_print.c -- libFuzzer target for tensor printing (cg_tensor_repr,
 * cg_tensor_print).
 *
 * The input decides a dtype, a base shape (rank 0..6; now and then long
 * enough to be summarised), the values (NaN, infinities, -0, the largest
 * and smallest magnitudes, subnormals, raw bit patterns), a chain of view
 * ops (permute, transpose, slice with a step, select, narrow, expand,
 * unsqueeze, squeeze) that gives arbitrary strides and offsets, and
 * whether the tensor requires grad, carries a grad_fn or is a Parameter.
 * The text is checked against the snprintf contract for buffer sizes from
 * 0 up: the same full length every time, a NUL-terminated prefix of the
 * full text, and cg_tensor_print writing the same text plus a newline.
 */
#define _GNU_SOURCE
#include "cgrad.h"
#include "fuzz_util.h"

#include <float.h>
#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    return 0;
}

#define MAX_NUMEL 4096
#define MAX_VALUES 64

static const double specials[] = {
    0.0,         -0.0,     NAN,        INFINITY,     -INFINITY,
    1.0,         -1.0,     0.5,        1e-5,         1e-4,
    9.99995e-5,  1e8,      99999999.5, 1e-300,       4.9406564584124654e-324,
    DBL_MAX,     -DBL_MAX, FLT_MAX,    FLT_MIN,      1e16,
    123456789.0, 0.1,      1.0 / 3.0,  1e-8,         100.25,
    65504.0,     -2.5,     1e38,       3.4028235e38, 1e-45,
    1e300,       2.0,      1000.0,     0.0001,       12345.6789,
    -7.0,
};

static double read_value(fuzz_reader *r, cg_dtype real_dt)
{
    unsigned kind = fz_pick(r, 4);
    if (kind == 0)
        return specials[fz_pick(r, sizeof specials / sizeof *specials)];
    if (kind == 1)
        return (double)(int8_t)fz_u8(r);
    if (kind == 2)
        return (double)(int16_t)fz_u16(r) / 64.0;
    if (real_dt == CG_FLOAT32) {
        uint32_t bits = fz_u32(r);
        float f;
        memcpy(&f, &bits, sizeof f);
        return (double)f;
    }
    uint64_t bits = fz_u64(r);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* One view op on *t chosen by the input; a failing op leaves *t as is. */
static void apply_view(fuzz_reader *r, cg_tensor **t)
{
    int nd = cg_tensor_dim(*t);
    cg_tensor *v = NULL;
    cg_status st = CG_ERR_VALUE;
    int64_t d0 = nd > 0 ? (int64_t)fz_pick(r, (unsigned)nd) : 0;
    switch (fz_pick(r, 8)) {
    case 0: { /* permute: a rotation or a swap pattern */
        int64_t perm[CG_MAX_DIMS];
        unsigned rot = nd > 0 ? fz_pick(r, (unsigned)nd) : 0;
        for (int i = 0; i < nd; i++)
            perm[i] = (int64_t)(((unsigned)i + rot) % (unsigned)nd);
        if (nd > 1 && fz_pick(r, 2)) {
            int64_t tmp = perm[0];
            perm[0] = perm[nd - 1];
            perm[nd - 1] = tmp;
        }
        st = cg_tensor_permute(*t, perm, nd, &v);
        break;
    }
    case 1:
        st = cg_tensor_transpose(*t, d0, nd > 0 ? nd - 1 : 0, &v);
        break;
    case 2: {
        int64_t start = (int64_t)(int8_t)fz_u8(r) % 8;
        int64_t end = fz_pick(r, 2) ? INT64_MAX : (int64_t)(int8_t)fz_u8(r) % 8;
        int64_t step = 1 + (int64_t)fz_pick(r, 4);
        st = cg_tensor_slice(*t, d0, start, end, step, &v);
        break;
    }
    case 3:
        st = cg_tensor_select(*t, d0, (int64_t)(int8_t)fz_u8(r) % 4, &v);
        break;
    case 4:
        st = cg_tensor_narrow(*t, d0, (int64_t)fz_pick(r, 3),
                              (int64_t)fz_pick(r, 3), &v);
        break;
    case 5: { /* expand a size-1 dimension, or add a leading one */
        int64_t shape[CG_MAX_DIMS];
        const int64_t *s = cg_tensor_shape(*t);
        int lead = nd < 6 ? (int)fz_pick(r, 2) : 0;
        if (lead)
            shape[0] = 1 + (int64_t)fz_pick(r, 3);
        for (int i = 0; i < nd; i++)
            shape[lead + i] = s[i] == 1 ? 1 + (int64_t)fz_pick(r, 4) : -1;
        st = cg_tensor_expand(*t, shape, nd + lead, &v);
        break;
    }
    case 6:
        st = cg_tensor_unsqueeze(
            *t, nd > 0 ? (int64_t)fz_pick(r, (unsigned)nd + 1) : 0, &v);
        break;
    default:
        st = fz_pick(r, 2) ? cg_tensor_squeeze(*t, &v)
                           : cg_tensor_squeeze_dim(*t, d0, &v);
        break;
    }
    if (st == CG_OK && cg_tensor_dim(v) <= 6) {
        cg_tensor_release(*t);
        *t = v;
    } else {
        cg_tensor_release(v);
    }
}

static void check_text(const cg_tensor *t)
{
    size_t full_len = 0;
    if (cg_tensor_repr(t, NULL, 0, &full_len) != CG_OK)
        return;
    char *full = malloc(full_len + 1);
    char *buf = malloc(full_len + 8);
    if (!full || !buf)
        goto done;
    size_t l = 0;
    if (cg_tensor_repr(t, full, full_len + 1, &l) != CG_OK)
        goto done;
    FUZZ_CHECK(l == full_len);
    FUZZ_CHECK(strlen(full) == full_len);
    const char *body = full;
    if (cg_tensor_is_parameter(t)) {
        FUZZ_CHECK(strncmp(full, "Parameter containing:\n", 22) == 0);
        body += 22;
    }
    FUZZ_CHECK(strncmp(body, "tensor(", 7) == 0);
    FUZZ_CHECK(full_len > 0 && full[full_len - 1] == ')');

    size_t sizes[] = {
        1, 2, 8, full_len / 2 + 1, full_len, full_len + 1, full_len + 7};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t s = sizes[i];
        memset(buf, 'Z', full_len + 8);
        l = 0;
        if (cg_tensor_repr(t, buf, s, &l) != CG_OK)
            continue;
        FUZZ_CHECK(l == full_len);
        size_t want = full_len < s - 1 ? full_len : s - 1;
        FUZZ_CHECK(buf[want] == '\0');
        FUZZ_CHECK(memcmp(buf, full, want) == 0);
        /* nothing past the NUL is written */
        FUZZ_CHECK(want + 1 >= full_len + 8 || buf[want + 1] == 'Z');
    }
    /* a buffer of size 0 is not touched */
    buf[0] = 'Z';
    if (cg_tensor_repr(t, buf, 0, &l) == CG_OK) {
        FUZZ_CHECK(l == full_len);
        FUZZ_CHECK(buf[0] == 'Z');
    }

    /* print(t) writes the same text and a newline */
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    if (f) {
        cg_status st = cg_tensor_print(t, f);
        fclose(f);
        if (st == CG_OK) {
            FUZZ_CHECK(memlen == full_len + 1);
            FUZZ_CHECK(memcmp(mem, full, full_len) == 0);
            FUZZ_CHECK(mem[full_len] == '\n');
        }
        free(mem);
    }
done:
    free(full);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader rd = {data, size}, *r = &rd;
    cg_dtype dt = (cg_dtype)fz_pick(r, CG_DTYPE_COUNT);
    cg_dtype real_dt = cg_dtype_to_real(dt);
    int rank = (int)fz_pick(r, 7);
    int64_t shape[6];
    int64_t numel = 1;
    bool big = fz_pick(r, 8) == 0;
    for (int i = 0; i < rank; i++) {
        int64_t d = (int64_t)fz_pick(r, 5);
        if (big && i == 0)
            d = 1 + (int64_t)fz_u16(r) % 1200;
        else if (big)
            d = 1 + (int64_t)fz_pick(r, 8);
        shape[i] = d;
        numel *= d;
    }
    if (numel > MAX_NUMEL)
        return 0;

    int nvals = 1 + (int)fz_pick(r, MAX_VALUES);
    double vals[MAX_VALUES];
    int per = cg_dtype_is_complex(dt) ? 2 : 1;
    for (int i = 0; i < nvals; i++)
        vals[i] = read_value(r, real_dt);

    size_t esz = cg_dtype_size(dt);
    uint8_t *raw = malloc((size_t)(numel > 0 ? numel : 1) * esz);
    if (!raw)
        return 0;
    for (int64_t i = 0; i < numel * per; i++) {
        double v = vals[i % nvals];
        if (real_dt == CG_FLOAT32) {
            float f = (float)v;
            memcpy(raw + (size_t)i * 4, &f, 4);
        } else {
            memcpy(raw + (size_t)i * 8, &v, 8);
        }
    }
    cg_tensor *base = NULL;
    cg_status st = cg_tensor_from_data(raw, shape, rank, dt, &base);
    free(raw);
    if (st != CG_OK)
        return 0;

    unsigned flags = fz_pick(r, 4);
    if (flags == 1 || flags == 3)
        cg_tensor_requires_grad_(base, true);
    else if (flags == 2)
        cg_tensor_set_parameter(base, true);

    cg_tensor *t = cg_tensor_retain(base);
    int nviews = (int)fz_pick(r, 5);
    for (int i = 0; i < nviews; i++)
        apply_view(r, &t);
    if (flags == 3) {
        /* a computed tensor: grad_fn=<...> in the suffix */
        cg_tensor *u = NULL;
        if (cg_mul_scalar(t, 1.0, &u) == CG_OK) {
            cg_tensor_release(t);
            t = u;
        }
    }

    check_text(t);
    if (t != base)
        check_text(base);
    cg_tensor_release(t);
    cg_tensor_release(base);
    cg_clear_error();
    return 0;
}
