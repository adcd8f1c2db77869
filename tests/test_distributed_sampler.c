/* test_distributed_sampler.c -- DistributedSampler (optim/
 * distributed_sampler.c) and the DataLoader's sampler option, held to
 * PyTorch 1.13's torch.utils.data.distributed.DistributedSampler: the
 * exact indices of every case in tests/data/distributed/sampler.tsv
 * (n, num_replicas, rank, shuffle, seed, epoch, drop_last), the
 * constructor errors word for word (sampler_errors.tsv), and the batches
 * and default-generator draws of a DataLoader over it (loader.tsv); all
 * made by tests/data/distributed/gen_sampler.py. No MPI involved. */
#include "testutil.h"

#include "cgrad_optim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The data lines of a .tsv under tests/data (comments skipped). */
static char **read_lines(const char *rel, int *n)
{
    char *text = tu_read_text(tu_data_path(rel));
    ck_assert_msg(text != NULL, "cannot read %s", rel);
    int cap = 16;
    char **lines = malloc((size_t)cap * sizeof *lines);
    *n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        if (l[0] == '#')
            continue;
        if (*n == cap)
            lines = realloc(lines, (size_t)(cap *= 2) * sizeof *lines);
        lines[(*n)++] = strdup(l);
    }
    free(text);
    return lines;
}

static void free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

START_TEST(test_indices_match_pytorch)
{
    int n = 0;
    char **lines = read_lines("distributed/sampler.tsv", &n);
    ck_assert_int_gt(n, 600);
    for (int c = 0; c < n; c++) {
        long long N, R, rank, shuffle, seed, epoch, drop, len;
        int used = 0;
        ck_assert_int_eq(sscanf(lines[c],
                                "%lld %lld %lld %lld %lld %lld %lld "
                                "%lld %n",
                                &N, &R, &rank, &shuffle, &seed, &epoch, &drop,
                                &len, &used),
                         8);
        cg_distributed_sampler_options o =
            cg_distributed_sampler_defaults(R, rank);
        ck_assert(o.shuffle && o.seed == 0 && !o.drop_last);
        o.shuffle = shuffle;
        o.seed = seed;
        o.drop_last = drop;
        cg_distributed_sampler *s = NULL;
        tu_ok(cg_distributed_sampler_new(N, &o, &s));
        cg_distributed_sampler_set_epoch(s, epoch);
        ck_assert_msg(cg_distributed_sampler_len(s) == len,
                      "case %d (%s): len %lld", c, lines[c],
                      (long long)cg_distributed_sampler_len(s));
        ck_assert_int_eq(cg_distributed_sampler_dataset_len(s), N);
        int64_t *idx = calloc((size_t)len + 1, sizeof *idx);
        tu_ok(cg_distributed_sampler_indices(s, idx));
        const char *p = lines[c] + used;
        if (len == 0)
            ck_assert_str_eq(p, "-");
        for (long long k = 0; k < len; k++) {
            char *end = NULL;
            long long want = strtoll(p, &end, 10);
            ck_assert_msg(end != p, "case %d: short reference", c);
            ck_assert_msg(idx[k] == want,
                          "case %d (%.60s...): index %lld is %" PRId64
                          ", PyTorch %lld",
                          c, lines[c], k, idx[k], want);
            p = end;
        }
        free(idx);
        cg_distributed_sampler_free(s);
    }
    free_lines(lines, n);
}
END_TEST

/* set_epoch changes the shuffle; the same epoch gives the same order. */
START_TEST(test_set_epoch_reshuffles)
{
    cg_distributed_sampler_options o = cg_distributed_sampler_defaults(2, 1);
    cg_distributed_sampler *s = NULL;
    tu_ok(cg_distributed_sampler_new(50, &o, &s));
    int64_t a[25], b[25], c[25];
    tu_ok(cg_distributed_sampler_indices(s, a));
    cg_distributed_sampler_set_epoch(s, 1);
    tu_ok(cg_distributed_sampler_indices(s, b));
    cg_distributed_sampler_set_epoch(s, 0);
    tu_ok(cg_distributed_sampler_indices(s, c));
    ck_assert(memcmp(a, b, sizeof a) != 0);
    ck_assert(memcmp(a, c, sizeof a) == 0);
    cg_distributed_sampler_free(s);
    cg_distributed_sampler_free(NULL);
    ck_assert_int_eq(cg_distributed_sampler_len(NULL), 0);
}
END_TEST

START_TEST(test_constructor_errors)
{
    int n = 0;
    char **lines = read_lines("distributed/sampler_errors.tsv", &n);
    ck_assert_int_eq(n, 5);
    for (int c = 0; c < n; c++) {
        long long N, R, rank;
        int used = 0;
        ck_assert_int_eq(
            sscanf(lines[c], "%lld %lld %lld %n", &N, &R, &rank, &used), 3);
        cg_distributed_sampler_options o =
            cg_distributed_sampler_defaults(R, rank);
        cg_distributed_sampler *s = (cg_distributed_sampler *)&s;
        tu_fails(cg_distributed_sampler_new(N, &o, &s), CG_ERR_VALUE,
                 lines[c] + used);
        ck_assert_ptr_eq(s, (cg_distributed_sampler *)&s); /* untouched */
    }
    free_lines(lines, n);
    cg_distributed_sampler_options o = cg_distributed_sampler_defaults(2, 0);
    cg_distributed_sampler *s = NULL;
    ck_assert_int_eq(cg_distributed_sampler_new(4, NULL, &s), CG_ERR_MISUSE);
    ck_assert_int_eq(cg_distributed_sampler_new(4, &o, NULL), CG_ERR_MISUSE);
    tu_fails(cg_distributed_sampler_new(-1, &o, &s), CG_ERR_VALUE,
             "cgrad: a data set cannot have -1 samples");
}
END_TEST

/* DataLoader(TensorDataset(arange(n)), batch_size, sampler=...): the
 * batches of epochs 0 and 1 and the next torch.rand(1) after
 * manual_seed(5), as PyTorch. */
START_TEST(test_dataloader_with_sampler)
{
    int n = 0;
    char **lines = read_lines("distributed/loader.tsv", &n);
    ck_assert_int_eq(n, 3);
    for (int c = 0; c < n; c++) {
        long long N, R, rank, batch, drop;
        char rows[1024], randv[64];
        ck_assert_int_eq(sscanf(lines[c],
                                "%lld %lld %lld %lld %lld %1023[^\t]"
                                "\t%63s",
                                &N, &R, &rank, &batch, &drop, rows, randv),
                         7);
        cg_manual_seed(5);
        cg_tensor *x = NULL;
        tu_ok(cg_arange(N, CG_FLOAT32, &x));
        cg_distributed_sampler_options so =
            cg_distributed_sampler_defaults(R, rank);
        so.seed = 4;
        so.drop_last = drop;
        cg_distributed_sampler *s = NULL;
        tu_ok(cg_distributed_sampler_new(N, &so, &s));
        cg_dataloader_options lo = cg_dataloader_defaults();
        ck_assert_ptr_null(lo.sampler);
        lo.batch_size = batch;
        lo.sampler = s;
        cg_dataloader *dl = NULL;
        tu_ok(cg_dataloader_new(&x, 1, &lo, &dl));
        ck_assert_int_eq(cg_dataloader_len(dl),
                         (cg_distributed_sampler_len(s) + batch - 1) / batch);
        char got[1024] = "";
        for (int e = 0; e < 2; e++) {
            cg_distributed_sampler_set_epoch(s, e);
            for (;;) {
                cg_tensor *b = NULL;
                bool has = false;
                tu_ok(cg_dataloader_next(dl, &b, &has));
                if (!has)
                    break;
                const float *v = cg_tensor_data(b);
                if (got[0])
                    strcat(got, " ");
                for (int64_t i = 0; i < cg_tensor_numel(b); i++)
                    snprintf(got + strlen(got), sizeof got - strlen(got),
                             "%s%d", i ? "," : "", (int)v[i]);
                cg_tensor_release(b);
            }
        }
        ck_assert_str_eq(got, rows);
        cg_tensor *r = NULL;
        int64_t one = 1;
        tu_ok(cg_rand(&one, 1, CG_FLOAT32, NULL, &r));
        char mine[64];
        snprintf(mine, sizeof mine, "%.9g", *(const float *)cg_tensor_data(r));
        ck_assert_str_eq(mine, randv);
        cg_tensor_release(r);
        cg_dataloader_free(dl);
        cg_distributed_sampler_free(s);
        cg_tensor_release(x);
    }
    free_lines(lines, n);
}
END_TEST

START_TEST(test_dataloader_sampler_errors)
{
    cg_tensor *x = NULL;
    tu_ok(cg_arange(12, CG_FLOAT32, &x));
    cg_distributed_sampler_options so = cg_distributed_sampler_defaults(2, 0);
    cg_distributed_sampler *s = NULL;
    tu_ok(cg_distributed_sampler_new(10, &so, &s));
    cg_dataloader_options lo = cg_dataloader_defaults();
    lo.sampler = s;
    lo.shuffle = true;
    cg_dataloader *dl = NULL;
    tu_fails(cg_dataloader_new(&x, 1, &lo, &dl), CG_ERR_VALUE,
             "sampler option is mutually exclusive with shuffle");
    lo.shuffle = false;
    tu_fails(cg_dataloader_new(&x, 1, &lo, &dl), CG_ERR_VALUE,
             "cgrad: the sampler covers 10 samples, the tensors hold 12");
    ck_assert_ptr_null(dl);
    cg_distributed_sampler_free(s);
    cg_tensor_release(x);
}
END_TEST

/* Every allocation of a sampler-driven epoch failing in turn. */
static cg_status sweep_scenario(void *ctx)
{
    (void)ctx;
    cg_tensor *x = NULL, *b = NULL;
    cg_distributed_sampler *s = NULL;
    cg_dataloader *dl = NULL;
    cg_distributed_sampler_options so = cg_distributed_sampler_defaults(3, 2);
    cg_dataloader_options lo = cg_dataloader_defaults();
    lo.batch_size = 2;
    bool has = true;
    cg_status st;
    if ((st = cg_arange(7, CG_FLOAT32, &x)) ||
        (st = cg_distributed_sampler_new(7, &so, &s)))
        goto done;
    lo.sampler = s;
    if ((st = cg_dataloader_new(&x, 1, &lo, &dl)))
        goto done;
    while (has && st == CG_OK) {
        st = cg_dataloader_next(dl, &b, &has);
        if (st == CG_OK && has)
            cg_tensor_release(b);
    }
done:
    cg_dataloader_free(dl);
    cg_distributed_sampler_free(s);
    cg_tensor_release(x);
    return st;
}

START_TEST(test_alloc_sweep)
{
    ck_assert_int_gt(tu_alloc_sweep(sweep_scenario, NULL, "sampler"), 3);
}
END_TEST

Suite *distributed_sampler_suite(void)
{
    Suite *s = suite_create("distributed_sampler");
    TCase *tc = tcase_create("sampler");
    tcase_add_test(tc, test_indices_match_pytorch);
    tcase_add_test(tc, test_set_epoch_reshuffles);
    tcase_add_test(tc, test_constructor_errors);
    tcase_add_test(tc, test_dataloader_with_sampler);
    tcase_add_test(tc, test_dataloader_sampler_errors);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
