/*
 * distributed_sampler.c -- torch.utils.data.distributed.DistributedSampler
 * of PyTorch 1.13 (torch/utils/data/distributed.py), with num_replicas and
 * rank given (no process group needed):
 *
 *   num_samples = ceil((n - R) / R)   if drop_last and n % R != 0
 *                 ceil(n / R)         otherwise
 *   total_size  = num_samples * R
 *   iter:  indices = randperm(n, generator seeded with seed + epoch)
 *                    if shuffle, else arange(n)
 *          padded to total_size with indices[j % n] (the list repeated
 *          from its head), or cut to total_size with drop_last
 *          this rank's = indices[rank : total_size : R]
 *
 * Checked against the real sampler (tests/data/distributed/sampler.tsv,
 * made by gen_sampler.py).
 */
#include "optim_internal.h"

struct cg_distributed_sampler {
    int64_t n, num_replicas, rank, num_samples, total_size, seed, epoch;
    bool shuffle, drop_last;
};

cg_distributed_sampler_options
cg_distributed_sampler_defaults(int64_t num_replicas, int64_t rank)
{
    return (cg_distributed_sampler_options){.num_replicas = num_replicas,
                                            .rank = rank,
                                            .shuffle = true,
                                            .seed = 0,
                                            .drop_last = false};
}

/* math.ceil(a / b) for b > 0 */
static int64_t ceil_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q + (a % b > 0);
}

cg_status cg_distributed_sampler_new(int64_t n,
                                     const cg_distributed_sampler_options *o,
                                     cg_distributed_sampler **out)
{
    if (!o)
        return cg__optim_null("options");
    if (!out)
        return cg__optim_null("out");
    if (o->rank >= o->num_replicas || o->rank < 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "Invalid rank %lld, rank should be in the "
                               "interval [0, %lld]",
                               (long long)o->rank,
                               (long long)(o->num_replicas - 1));
    if (n < 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "cgrad: a data set cannot have %lld samples",
                               (long long)n);
    cg_distributed_sampler *s = cg_calloc(1, sizeof *s);
    if (!s)
        return cg__optim_nomem(sizeof *s);
    int64_t R = o->num_replicas;
    s->n = n;
    s->num_replicas = R;
    s->rank = o->rank;
    s->shuffle = o->shuffle;
    s->seed = o->seed;
    s->drop_last = o->drop_last;
    s->num_samples =
        o->drop_last && n % R != 0 ? ceil_div(n - R, R) : ceil_div(n, R);
    s->total_size = s->num_samples * R;
    *out = s;
    return CG_OK;
}

void cg_distributed_sampler_free(cg_distributed_sampler *s)
{
    cg_free(s);
}

int64_t cg_distributed_sampler_dataset_len(const cg_distributed_sampler *s)
{
    return s ? s->n : 0;
}

int64_t cg_distributed_sampler_len(const cg_distributed_sampler *s)
{
    return s ? s->num_samples : 0;
}

void cg_distributed_sampler_set_epoch(cg_distributed_sampler *s, int64_t epoch)
{
    if (s)
        s->epoch = epoch;
}

cg_status cg_distributed_sampler_indices(const cg_distributed_sampler *s,
                                         int64_t *out)
{
    if (!s)
        return cg__optim_null("sampler");
    if (s->num_samples > 0 && !out)
        return cg__optim_null("out");
    if (s->num_samples == 0)
        return CG_OK;
    size_t bytes = (size_t)s->n * sizeof(int64_t);
    int64_t *all = cg_malloc(bytes);
    if (!all)
        return cg__optim_nomem(bytes);
    if (s->shuffle) {
        cg_generator *g = NULL;
        cg_status st = cg_generator_new((uint64_t)(s->seed + s->epoch), &g);
        if (st != CG_OK) {
            cg_free(all);
            return st;
        }
        cg_randperm_indices(s->n, g, all);
        cg_generator_free(g);
    } else {
        for (int64_t i = 0; i < s->n; i++)
            all[i] = i;
    }
    /* position rank + k*R of the padded (or cut) list; n > 0 here */
    for (int64_t k = 0; k < s->num_samples; k++)
        out[k] = all[(s->rank + k * s->num_replicas) % s->n];
    cg_free(all);
    return CG_OK;
}
