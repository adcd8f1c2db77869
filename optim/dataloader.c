/*
 * dataloader.c -- DataLoader(TensorDataset(*tensors), batch_size, shuffle,
 * drop_last, generator) with num_workers=0, as PyTorch 1.13 runs it
 * (torch/utils/data/dataloader.py, sampler.py, dataset.py):
 *
 *   iter(loader)   draws the loader's _base_seed: one int64 random_() from
 *                  the loader's generator (or the default one), shuffled or
 *                  not
 *   first batch    RandomSampler starts: with generator=None it draws a
 *                  seed (int64 random_() of the default generator) for a
 *                  fresh torch.Generator; then randperm(n, generator)
 *   batches        BatchSampler: batch_size indices in order; the last
 *                  partial batch is kept unless drop_last
 *   exhaustion     the sampler, asked for more than n indices, evaluates
 *                  randperm(n, generator)[:0] (num_samples % n is 0) before
 *                  it stops: one more permutation is drawn and thrown away
 *   collation      torch.stack of the rows: contiguous copies
 *
 * Every draw happens in the same call as in PyTorch, so a training loop
 * that also draws from the same generators (dropout, init) stays in step
 * with PyTorch. int64 random_() is random64() % 2**63 (PyTorch's
 * uniform_int for int64).
 */
#include "optim_internal.h"

#include <string.h>

struct cg_dataloader {
    int ntensors;
    cg_tensor **tensors; /* references */
    int64_t n, batch_size;
    bool shuffle, drop_last;
    cg_generator *gen; /* the loader's generator (borrowed) or NULL */
    cg_distributed_sampler *sampler; /* borrowed or NULL; with
                                        it n counts the sampler's indices */
    cg_generator *own; /* the sampler's fresh generator (gen NULL) */
    int64_t *perm;     /* this epoch's order */
    int64_t *scratch;  /* the discarded permutation */
    bool active;       /* iter() done, the epoch not finished */
    bool started;      /* the sampler has drawn its permutation */
    bool exhausted;    /* the sampler has stopped */
    int64_t pos;       /* indices handed out this epoch */
};

cg_dataloader_options cg_dataloader_defaults(void)
{
    return (cg_dataloader_options){.batch_size = 1,
                                   .shuffle = false,
                                   .drop_last = false,
                                   .generator = NULL,
                                   .sampler = NULL};
}

void cg_dataloader_free(cg_dataloader *dl)
{
    if (!dl)
        return;
    for (int i = 0; i < dl->ntensors; i++)
        cg_tensor_release(dl->tensors[i]);
    cg_free(dl->tensors);
    cg_generator_free(dl->own);
    cg_free(dl->perm);
    cg_free(dl->scratch);
    cg_free(dl);
}

cg_status cg_dataloader_new(cg_tensor *const *tensors, int num_tensors,
                            const cg_dataloader_options *opts,
                            cg_dataloader **out)
{
    if (!out)
        return cg__optim_null("out");
    if (!opts)
        return cg__optim_null("options");
    if (num_tensors > 0 && !tensors)
        return cg__optim_null("tensors");
    for (int i = 0; i < num_tensors; i++) {
        if (!tensors[i])
            return cg__optim_null("tensor");
        if (cg_tensor_dim(tensors[i]) == 0)
            return cg__optim_error(CG_ERR_INDEX,
                                   "dimension specified as 0 but tensor has "
                                   "no dimensions");
        if (cg_tensor_shape(tensors[i])[0] != cg_tensor_shape(tensors[0])[0])
            return cg__optim_error(CG_ERR_VALUE,
                                   "Size mismatch between tensors");
    }
    if (num_tensors <= 0)
        return cg__optim_error(CG_ERR_INDEX, "tuple index out of range");
    int64_t n = cg_tensor_shape(tensors[0])[0];
    if (opts->sampler && opts->shuffle)
        return cg__optim_error(CG_ERR_VALUE,
                               "sampler option is mutually exclusive with "
                               "shuffle");
    if (opts->sampler) {
        /* the DistributedSampler's data set must be these tensors */
        int64_t m = cg_distributed_sampler_dataset_len(opts->sampler);
        if (m != n)
            return cg__optim_error(CG_ERR_VALUE,
                                   "cgrad: the sampler covers %lld samples, "
                                   "the tensors hold %lld",
                                   (long long)m, (long long)n);
        n = cg_distributed_sampler_len(opts->sampler);
    }
    if (opts->shuffle && n <= 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "num_samples should be a positive integer "
                               "value, but got num_samples=%lld",
                               (long long)n);
    if (opts->batch_size <= 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "batch_size should be a positive integer "
                               "value, but got batch_size=%lld",
                               (long long)opts->batch_size);

    cg_dataloader *dl = cg_calloc(1, sizeof *dl);
    if (!dl)
        return cg__optim_nomem(sizeof *dl);
    dl->n = n;
    dl->batch_size = opts->batch_size;
    dl->shuffle = opts->shuffle;
    dl->drop_last = opts->drop_last;
    dl->gen = opts->generator;
    dl->sampler = opts->sampler;
    cg_status st = CG_OK;
    size_t bytes = (size_t)num_tensors * sizeof *dl->tensors;
    dl->tensors = cg_calloc((size_t)num_tensors, sizeof *dl->tensors);
    if (!dl->tensors)
        st = cg__optim_nomem(bytes);
    bytes = ((size_t)n + 1) * sizeof(int64_t);
    if (st == CG_OK && !(dl->perm = cg_malloc(bytes)))
        st = cg__optim_nomem(bytes);
    if (st == CG_OK && opts->shuffle && !(dl->scratch = cg_malloc(bytes)))
        st = cg__optim_nomem(bytes);
    if (st == CG_OK && opts->shuffle && !opts->generator)
        st = cg_generator_new(0, &dl->own);
    if (st != CG_OK) {
        cg_dataloader_free(dl);
        return st;
    }
    for (int i = 0; i < num_tensors; i++)
        dl->tensors[i] = cg_tensor_retain(tensors[i]);
    dl->ntensors = num_tensors;
    *out = dl;
    return CG_OK;
}

int64_t cg_dataloader_len(const cg_dataloader *dl)
{
    if (!dl)
        return 0;
    if (dl->drop_last)
        return dl->n / dl->batch_size;
    return (dl->n + dl->batch_size - 1) / dl->batch_size;
}

void cg_dataloader_reset(cg_dataloader *dl)
{
    if (dl)
        dl->active = false;
}

/* torch.empty((), dtype=torch.int64).random_(generator=g).item() */
static uint64_t int64_random(cg_generator *g)
{
    return cg_generator_random64(g) % (UINT64_C(1) << 63);
}

/* The sampler's generator, once it has started. */
static cg_generator *sampler_gen(cg_dataloader *dl)
{
    return dl->gen ? dl->gen : dl->own;
}

/* RandomSampler.__iter__ (or the DistributedSampler's) up to its first
 * yield. */
static void start_sampler(cg_dataloader *dl)
{
    if (dl->sampler) {
        /* the indices are already in perm (cg_dataloader_next) */
    } else if (dl->shuffle) {
        if (!dl->gen)
            cg_generator_manual_seed(dl->own, int64_random(NULL));
        cg_randperm_indices(dl->n, sampler_gen(dl), dl->perm);
    } else {
        for (int64_t i = 0; i < dl->n; i++)
            dl->perm[i] = i;
    }
    dl->started = true;
}

/* Copies rows idx[0 .. b) of t into the contiguous `out`, a run of
 * memory at a time: the trailing dimensions whose elements follow each
 * other in t (all of a row, for a contiguous dataset) go in one memcpy. */
static void gather(const cg_tensor *t, const int64_t *idx, int64_t b,
                   cg_tensor *out)
{
    int nd = cg_tensor_dim(t);
    const int64_t *shape = cg_tensor_shape(t);
    const int64_t *strides = cg_tensor_strides(t);
    size_t el = cg_dtype_size(cg_tensor_dtype(t));
    const char *src = cg_tensor_data(t);
    char *dst = cg_tensor_data(out);
    /* dims [inner, nd) are one run of `run` elements; dims [1, inner)
     * are walked */
    int inner = nd;
    int64_t run = 1;
    while (inner > 1 && (shape[inner - 1] == 1 || strides[inner - 1] == run)) {
        run *= shape[inner - 1];
        inner--;
    }
    int64_t runs = 1;
    for (int d = 1; d < inner; d++)
        runs *= shape[d];
    const size_t bytes = (size_t)run * el;
    for (int64_t j = 0; j < b; j++) {
        /* walk the row's runs in row-major order */
        int64_t pos[CG_MAX_DIMS] = {0};
        int64_t off = idx[j] * strides[0];
        for (int64_t r = 0; r < runs; r++) {
            memcpy(dst, src + (size_t)off * el, bytes);
            dst += bytes;
            for (int d = inner - 1; d >= 1; d--) {
                if (++pos[d] < shape[d]) {
                    off += strides[d];
                    break;
                }
                off -= strides[d] * (shape[d] - 1);
                pos[d] = 0;
            }
        }
    }
}

cg_status cg_dataloader_next(cg_dataloader *dl, cg_tensor **batch,
                             bool *has_batch)
{
    if (!dl)
        return cg__optim_null("dataloader");
    if (!batch)
        return cg__optim_null("batch");
    if (!has_batch)
        return cg__optim_null("has_batch");
    /* What this call hands out depends only on counts, not on draws, so
     * the batch is allocated before anything is drawn. */
    int64_t left = dl->n - (dl->active ? dl->pos : 0);
    bool stopped = dl->active && dl->exhausted;
    int64_t b = stopped                  ? 0
                : left >= dl->batch_size ? dl->batch_size
                : dl->drop_last          ? 0
                                         : left;
    bool exhausts = !stopped && left < dl->batch_size; /* asks past the end */
    cg_tensor *made[64];
    cg_tensor **outs = dl->ntensors <= 64 ? made : NULL;
    if (!outs) {
        size_t bytes = (size_t)dl->ntensors * sizeof *outs;
        if (!(outs = cg_malloc(bytes)))
            return cg__optim_nomem(bytes);
    }
    cg_status st = CG_OK;
    int done = 0;
    for (; b > 0 && done < dl->ntensors; done++) {
        const cg_tensor *t = dl->tensors[done];
        int64_t shape[CG_MAX_DIMS];
        memcpy(shape, cg_tensor_shape(t),
               (size_t)cg_tensor_dim(t) * sizeof *shape);
        shape[0] = b;
        st = cg_empty(shape, cg_tensor_dim(t), cg_tensor_dtype(t), &outs[done]);
        if (st != CG_OK)
            break;
    }
    /* A DistributedSampler allocates: its indices are taken before the
     * point of no failure (perm is unused until an epoch's first batch). */
    if (st == CG_OK && dl->sampler && (!dl->active || !dl->started))
        st = cg_distributed_sampler_indices(dl->sampler, dl->perm);
    if (st != CG_OK) {
        for (int i = 0; i < done; i++)
            cg_tensor_release(outs[i]);
        if (outs != made)
            cg_free(outs);
        return st;
    }

    /* From here on nothing can fail. */
    if (!dl->active) { /* iter(loader) */
        (void)int64_random(dl->gen);
        dl->active = true;
        dl->started = false;
        dl->exhausted = false;
        dl->pos = 0;
    }
    if (!dl->started)
        start_sampler(dl);
    if (b > 0)
        for (int i = 0; i < dl->ntensors; i++) {
            gather(dl->tensors[i], dl->perm + dl->pos, b, outs[i]);
            batch[i] = outs[i];
        }
    dl->pos += b;
    if (exhausts) {
        if (dl->shuffle) /* randperm(n, generator)[:0] */
            cg_randperm_indices(dl->n, sampler_gen(dl), dl->scratch);
        dl->exhausted = true;
    }
    *has_batch = b > 0;
    if (b == 0)
        dl->active = false; /* StopIteration: the next call starts anew */
    if (outs != made)
        cg_free(outs);
    return CG_OK;
}
