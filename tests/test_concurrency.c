/*
 * test_concurrency.c -- the library used from several user threads at once
 * (issue 9). Run under ThreadSanitizer in CI (.ci/run), where any data race
 * in the library fails the run.
 *
 * TCases:
 *   trainers     two user threads each train their own model (Sequential(
 *                Conv3d, ReLU, ConvTranspose3d), MSELoss, AdamW) at the
 *                same time, sharing the thread pool; each thread's loss
 *                trajectory and final parameters are bitwise those of the
 *                same training run alone on the main thread.
 *   num_threads  one thread keeps changing cg_set_num_threads (1..8) while
 *                another computes conv3d and conv_transpose3d forward and
 *                backward and a matmul over and over; every result is
 *                bitwise the one computed beforehand with one thread.
 *
 * Check assertions are made on the main thread only: the worker threads
 * record what they saw and the main thread compares after joining them.
 */
#include "testutil.h"

#include "cgrad_nn.h"
#include "cgrad_optim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The values of t as doubles (malloc'd), *n of them. */
static double *values(const cg_tensor *t, int64_t *n)
{
    *n = cg_tensor_numel(t);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    if (v && cg_tensor_to_doubles(t, v, *n) != CG_OK) {
        free(v);
        v = NULL;
    }
    return v;
}

/* Bitwise equality of two tensors' values (and sizes). */
static bool same_bits(const cg_tensor *a, const cg_tensor *b)
{
    if (!a || !b || cg_tensor_dim(a) != cg_tensor_dim(b) ||
        memcmp(cg_tensor_shape(a), cg_tensor_shape(b),
               (size_t)cg_tensor_dim(a) * sizeof(int64_t)) != 0)
        return false;
    int64_t na, nb;
    double *va = values(a, &na), *vb = values(b, &nb);
    bool eq =
        va && vb && na == nb && memcmp(va, vb, (size_t)na * sizeof *va) == 0;
    free(va);
    free(vb);
    return eq;
}

/* ======================================================================
 * Two trainers
 * ====================================================================== */

#define TRAIN_STEPS 4

typedef struct trainer {
    uint64_t seed;
    cg_module *model, *mse;
    cg_tensor *x, *target;
    double losses[TRAIN_STEPS];
    cg_status st;
    char error[256];
} trainer;

/* Sequential(Conv3d(1,4,3,s2,p1), ReLU, ConvTranspose3d(4,1,4,s2,p1)),
 * its data (2, 1, 8, 8, 8), all from `seed` (main thread: the default
 * generator is shared). */
static void trainer_init(trainer *t, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->seed = seed;
    cg_manual_seed(seed);
    cg_module *conv = NULL, *relu = NULL, *convt = NULL;
    cg_conv3d_opts co = cg_conv3d_options(1, 4, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(4, 1, CG_INT3(4));
    to.stride = CG_INT3(2);
    to.padding = CG_INT3(1);
    tu_ok(cg_sequential_new(&t->model));
    tu_ok(cg_conv3d_new(&co, &conv));
    tu_ok(cg_relu_new(&relu));
    tu_ok(cg_conv_transpose3d_new(&to, &convt));
    tu_ok(cg_sequential_append(t->model, conv));
    tu_ok(cg_sequential_append(t->model, relu));
    tu_ok(cg_sequential_append(t->model, convt));
    cg_module_free(conv);
    cg_module_free(relu);
    cg_module_free(convt);
    tu_ok(cg_mse_loss_new("mean", &t->mse));
    static const int64_t shape[5] = {2, 1, 8, 8, 8};
    tu_ok(cg_randn(shape, 5, CG_FLOAT32, NULL, &t->x));
    tu_ok(cg_randn(shape, 5, CG_FLOAT32, NULL, &t->target));
    /* make the parameter list now, so training does only computing */
    ck_assert_int_eq(cg_module_num_parameters(t->model), 4);
}

static void trainer_free(trainer *t)
{
    cg_module_free(t->model);
    cg_module_free(t->mse);
    cg_tensor_release(t->x);
    cg_tensor_release(t->target);
}

/* TRAIN_STEPS AdamW steps; no Check call (it may run on any thread). */
static cg_status train(trainer *t)
{
    cg_tensor *params[4];
    cg_status st = CG_OK;
    for (int i = 0; i < 4 && st == CG_OK; i++)
        st = cg_module_named_parameter(t->model, i, NULL, &params[i]);
    cg_optimizer *opt = NULL;
    cg_adamw_options o = cg_adamw_defaults();
    o.lr = 1e-2;
    if (st == CG_OK)
        st = cg_adamw_new(params, 4, &o, &opt);
    for (int k = 0; k < TRAIN_STEPS && st == CG_OK; k++) {
        cg_tensor *y = NULL, *loss = NULL;
        double im;
        if ((st = cg_optimizer_zero_grad(opt, true)) == CG_OK &&
            (st = cg_module_forward(t->model, t->x, &y)) == CG_OK &&
            (st = cg_loss_forward(t->mse, y, t->target, &loss)) == CG_OK &&
            (st = cg_tensor_item(loss, &t->losses[k], &im)) == CG_OK &&
            (st = cg_tensor_backward(loss, NULL, false)) == CG_OK)
            st = cg_optimizer_step(opt);
        cg_tensor_release(loss);
        cg_tensor_release(y);
    }
    cg_optimizer_free(opt);
    if (st != CG_OK)
        snprintf(t->error, sizeof t->error, "%s: %s", cg_status_name(st),
                 cg_last_error());
    return st;
}

static void *train_thread(void *arg)
{
    trainer *t = arg;
    t->st = train(t);
    return NULL;
}

static void assert_same_training(const trainer *got, const trainer *ref)
{
    ck_assert_msg(got->st == CG_OK, "seed %llu: %s",
                  (unsigned long long)got->seed, got->error);
    for (int k = 0; k < TRAIN_STEPS; k++)
        ck_assert_msg(
            memcmp(&got->losses[k], &ref->losses[k], sizeof(double)) == 0,
            "seed %llu, step %d: loss %.17g, alone %.17g",
            (unsigned long long)got->seed, k, got->losses[k], ref->losses[k]);
    for (int i = 0; i < 4; i++) {
        cg_tensor *a, *b;
        const char *name;
        tu_ok(cg_module_named_parameter(got->model, i, &name, &a));
        tu_ok(cg_module_named_parameter(ref->model, i, NULL, &b));
        ck_assert_msg(same_bits(a, b),
                      "seed %llu: parameter %s differs "
                      "from the run alone",
                      (unsigned long long)got->seed, name);
    }
}

START_TEST(test_two_trainers)
{
    tu_ok(cg_set_num_threads(4));
    /* alone, one after the other, on the main thread */
    trainer ref[2];
    trainer_init(&ref[0], 11);
    trainer_init(&ref[1], 22);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(train(&ref[i]) == CG_OK, "%s", ref[i].error);
    /* the losses move: the runs really train */
    for (int i = 0; i < 2; i++)
        ck_assert_msg(ref[i].losses[TRAIN_STEPS - 1] < ref[i].losses[0],
                      "seed %llu: loss %.9g -> %.9g",
                      (unsigned long long)ref[i].seed, ref[i].losses[0],
                      ref[i].losses[TRAIN_STEPS - 1]);
    /* together, each in its own thread, several rounds */
    for (int round = 0; round < 3; round++) {
        trainer t[2];
        trainer_init(&t[0], 11);
        trainer_init(&t[1], 22);
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_create(&th[i], NULL, train_thread, &t[i]),
                             0);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        for (int i = 0; i < 2; i++) {
            assert_same_training(&t[i], &ref[i]);
            trainer_free(&t[i]);
        }
    }
    for (int i = 0; i < 2; i++)
        trainer_free(&ref[i]);
}
END_TEST

/* ======================================================================
 * Changing the thread count while another thread computes
 * ====================================================================== */

/* conv3d and conv_transpose3d forward + backward (through sum(y * gy)),
 * a matmul, and an elementwise product and its sum large enough to be
 * split into chunks: 9 results. */
#define NRESULTS 9

typedef struct workload {
    cg_tensor *x, *w, *b, *gy;     /* conv3d: x (2,3,9,9,9), w (4,3,3,3,3) */
    cg_tensor *xt, *wt, *bt, *gyt; /* conv_transpose3d: xt (2,4,5,5,5),
                                     wt (4,3,4,4,4) */
    cg_tensor *ma, *mb;            /* matmul (96, 128) x (128, 80) */
    cg_tensor *ea, *eb;            /* elementwise (4, 40000) */
} workload;

static void workload_init(workload *L)
{
    cg_generator *g = NULL;
    tu_ok(cg_generator_new(7, &g));
    struct {
        cg_tensor **t;
        int64_t shape[5];
        int nd;
        bool grad;
    } spec[] = {
        {&L->x, {2, 3, 9, 9, 9}, 5, true},
        {&L->w, {4, 3, 3, 3, 3}, 5, true},
        {&L->b, {4}, 1, true},
        {&L->gy, {2, 4, 5, 5, 5}, 5, false},
        {&L->xt, {2, 4, 5, 5, 5}, 5, true},
        {&L->wt, {4, 3, 4, 4, 4}, 5, true},
        {&L->bt, {3}, 1, true},
        {&L->gyt, {2, 3, 10, 10, 10}, 5, false},
        {&L->ma, {96, 128}, 2, false},
        {&L->mb, {128, 80}, 2, false},
        {&L->ea, {4, 40000}, 2, false},
        {&L->eb, {4, 40000}, 2, false},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        tu_ok(cg_randn(spec[i].shape, spec[i].nd, CG_FLOAT32, g, spec[i].t));
        if (spec[i].grad)
            tu_ok(cg_tensor_requires_grad_(*spec[i].t, true));
    }
    cg_generator_free(g);
}

static void workload_free(workload *L)
{
    cg_tensor *all[] = {L->x,  L->w,   L->b,  L->gy, L->xt, L->wt,
                        L->bt, L->gyt, L->ma, L->mb, L->ea, L->eb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cg_tensor_release(all[i]);
}

/* One pass: out[] = conv3d's y and its x, w, b grads; conv_transpose3d's
 * y and its weight grad; the matmul; the product and its sum. The leaves' .grad
 * are reset first; out[] are new references. */
static cg_status workload_run(workload *L, cg_tensor *out[NRESULTS])
{
    cg_tensor *y = NULL, *p = NULL, *s = NULL, *yt = NULL, *pt = NULL,
              *stt = NULL, *m = NULL, *e = NULL, *es = NULL;
    cg_status st;
    cg_tensor *leaves[] = {L->x, L->w, L->b, L->xt, L->wt, L->bt};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++)
        if ((st = cg_tensor_zero_grad(leaves[i], true)) != CG_OK)
            return st;
    memset(out, 0, NRESULTS * sizeof *out);
    if ((st = cg_conv3d(L->x, L->w, L->b, CG_INT3(2), CG_INT3(1), CG_INT3(1), 1,
                        &y)) != CG_OK ||
        (st = cg_mul(y, L->gy, &p)) != CG_OK || (st = cg_sum(p, &s)) != CG_OK ||
        (st = cg_tensor_backward(s, NULL, false)) != CG_OK ||
        (st = cg_conv_transpose3d(L->xt, L->wt, L->bt, CG_INT3(2), CG_INT3(1),
                                  CG_INT3(0), 1, CG_INT3(1), &yt)) != CG_OK ||
        (st = cg_mul(yt, L->gyt, &pt)) != CG_OK ||
        (st = cg_sum(pt, &stt)) != CG_OK ||
        (st = cg_tensor_backward(stt, NULL, false)) != CG_OK ||
        (st = cg_matmul(L->ma, L->mb, &m)) != CG_OK ||
        (st = cg_mul(L->ea, L->eb, &e)) != CG_OK ||
        (st = cg_sum(e, &es)) != CG_OK)
        goto done;
    cg_tensor *res[NRESULTS] = {y,
                                cg_tensor_grad(L->x),
                                cg_tensor_grad(L->w),
                                cg_tensor_grad(L->b),
                                yt,
                                cg_tensor_grad(L->wt),
                                m,
                                e,
                                es};
    for (int i = 0; i < NRESULTS; i++)
        if (!res[i]) {
            st = cg_error(CG_ERR_RUNTIME, "result %d missing", i);
            goto done;
        }
    for (int i = 0; i < NRESULTS; i++)
        out[i] = cg_tensor_retain(res[i]);
done:
    cg_tensor_release(y);
    cg_tensor_release(p);
    cg_tensor_release(s);
    cg_tensor_release(yt);
    cg_tensor_release(pt);
    cg_tensor_release(stt);
    cg_tensor_release(m);
    cg_tensor_release(e);
    cg_tensor_release(es);
    return st;
}

typedef struct computer {
    workload *L;
    cg_tensor *const *ref; /* NRESULTS */
    int iterations;
    atomic_bool *done;
    int mismatches, first_bad;
    cg_status st;
    char error[256];
} computer;

static void *compute_thread(void *arg)
{
    computer *c = arg;
    c->first_bad = -1;
    for (int it = 0; it < c->iterations && c->st == CG_OK; it++) {
        cg_tensor *out[NRESULTS];
        c->st = workload_run(c->L, out);
        if (c->st != CG_OK) {
            snprintf(c->error, sizeof c->error, "%s: %s", cg_status_name(c->st),
                     cg_last_error());
            break;
        }
        for (int i = 0; i < NRESULTS; i++) {
            if (!same_bits(out[i], c->ref[i])) {
                c->mismatches++;
                if (c->first_bad < 0)
                    c->first_bad = i;
            }
            cg_tensor_release(out[i]);
        }
    }
    atomic_store(c->done, true);
    return NULL;
}

typedef struct changer {
    atomic_bool *done;
    int changes;
    cg_status st;
} changer;

static void *change_thread(void *arg)
{
    changer *ch = arg;
    int n = 1;
    while (!atomic_load(ch->done) && ch->st == CG_OK) {
        n = n % 8 + 1;
        ch->st = cg_set_num_threads(n);
        ch->changes++;
        if (cg_get_num_threads() < 1)
            ch->st = CG_ERR_RUNTIME;
    }
    return NULL;
}

START_TEST(test_num_threads_while_computing)
{
    workload L;
    workload_init(&L);
    /* the reference: one thread */
    tu_ok(cg_set_num_threads(1));
    cg_tensor *ref[NRESULTS];
    tu_ok(workload_run(&L, ref));
    /* the same with 4 threads, as a sanity check of the claim itself */
    tu_ok(cg_set_num_threads(4));
    cg_tensor *four[NRESULTS];
    tu_ok(workload_run(&L, four));
    for (int i = 0; i < NRESULTS; i++) {
        ck_assert_msg(same_bits(four[i], ref[i]),
                      "result %d differs with 4 "
                      "threads",
                      i);
        cg_tensor_release(four[i]);
    }
    atomic_bool done = false;
    computer c = {&L, ref, 12, &done, 0, -1, CG_OK, ""};
    changer ch = {&done, 0, CG_OK};
    pthread_t tc, tch;
    ck_assert_int_eq(pthread_create(&tch, NULL, change_thread, &ch), 0);
    ck_assert_int_eq(pthread_create(&tc, NULL, compute_thread, &c), 0);
    ck_assert_int_eq(pthread_join(tc, NULL), 0);
    ck_assert_int_eq(pthread_join(tch, NULL), 0);
    ck_assert_msg(c.st == CG_OK, "computing thread: %s", c.error);
    ck_assert_msg(ch.st == CG_OK, "cg_set_num_threads failed");
    ck_assert_msg(c.mismatches == 0,
                  "%d results differ from the one-thread "
                  "reference (first: result %d)",
                  c.mismatches, c.first_bad);
    ck_assert_int_gt(ch.changes, 0);
    for (int i = 0; i < NRESULTS; i++)
        cg_tensor_release(ref[i]);
    workload_free(&L);
    tu_ok(cg_set_num_threads(4));
}
END_TEST

Suite *concurrency_suite(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("trainers");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_two_trainers);
    suite_add_tcase(s, tc);
    tc = tcase_create("num_threads");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_num_threads_while_computing);
    suite_add_tcase(s, tc);
    return s;
}
