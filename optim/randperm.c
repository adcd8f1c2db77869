/*
 * randperm.c -- torch.randperm on CPU, bit for bit as PyTorch 1.13:
 *
 *   r = [0, 1, ..., n-1]
 *   for i in 0 .. n-2:
 *       z = generator.random() % (n - i)     (one 32-bit MT19937 draw)
 *       swap(r[i], r[i + z])
 *
 * checked against torch.randperm for n = 0, 1, 2, 5, 100, 1000, 50000 on
 * the default and on private generators (tests/data/optim/randperm.tsv).
 * torch.randperm belongs with core/rng.c; it lives in optim/ (which needs
 * it for the DataLoader) until the core takes it over.
 */
#include "optim_internal.h"

#include <string.h>

/* PyTorch's scalar-type names for the dtype error. */
static const char *scalar_type_name(cg_dtype dt)
{
    return dt == CG_COMPLEX64 ? "ComplexFloat" : "ComplexDouble";
}

static void shuffle(int64_t n, cg_generator *g, int64_t *r)
{
    for (int64_t i = 0; i < n; i++)
        r[i] = i;
    for (int64_t i = 0; i + 1 < n; i++) {
        int64_t z = (int64_t)(cg_generator_random(g) % (uint64_t)(n - i));
        int64_t sav = r[i];
        r[i] = r[z + i];
        r[z + i] = sav;
    }
}

cg_status cg_randperm_indices(int64_t n, cg_generator *g, int64_t *out)
{
    if (n < 0)
        return cg__optim_error(CG_ERR_RUNTIME,
                               "Trying to create tensor with negative "
                               "dimension %lld: [%lld]",
                               (long long)n, (long long)n);
    if (n > 0 && !out)
        return cg__optim_null("out");
    shuffle(n, g, out);
    return CG_OK;
}

cg_status cg_randperm(int64_t n, cg_dtype dt, cg_generator *g, cg_tensor **out)
{
    if (!out)
        return cg__optim_null("out");
    if (n < 0)
        return cg__optim_error(CG_ERR_RUNTIME,
                               "Trying to create tensor with negative "
                               "dimension %lld: [%lld]",
                               (long long)n, (long long)n);
    if (dt != CG_FLOAT32 && dt != CG_FLOAT64) {
        if (cg_dtype_is_complex(dt))
            return cg__optim_error(CG_ERR_RUNTIME,
                                   "\"randperm\" not implemented for '%s'",
                                   scalar_type_name(dt));
        return cg__optim_error(CG_ERR_VALUE, "invalid dtype %d", (int)dt);
    }
    cg_tensor *t = NULL;
    cg_status st = cg_empty(&n, 1, dt, &t);
    if (st != CG_OK)
        return st;
    if ((uint64_t)n > SIZE_MAX / sizeof(int64_t)) {
        cg_tensor_release(t);
        return cg__optim_nomem(SIZE_MAX);
    }
    size_t bytes = (size_t)n * sizeof(int64_t);
    int64_t *r = cg_malloc(bytes);
    if (!r) {
        cg_tensor_release(t);
        return cg__optim_nomem(bytes);
    }
    shuffle(n, g, r);
    /* a fresh contiguous tensor nobody else sees: filled through its data */
    if (dt == CG_FLOAT32) {
        float *d = cg_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)r[i];
    } else {
        double *d = cg_tensor_data(t);
        for (int64_t i = 0; i < n; i++)
            d[i] = (double)r[i];
    }
    cg_free(r);
    *out = t;
    return CG_OK;
}
