/* test_distributed.c -- cgrad_distributed under mpirun (-np 2 and -np 3 in
 * ctest): the process group's broadcast and deterministic all-reduce,
 * DDP's wrap-time checks and messages, and data-parallel training held to
 * a single-process run.
 *
 * An MPI program, not a Check suite: Check's forked tests do not mix with
 * MPI, and a failed assertion on one rank must end every rank. A failed
 * CHECK calls cg_dist_abort with the file, line and message, so the whole
 * job ends at once, nonzero, with the message on every rank; rank 0 prints
 * the summary when everything passed.
 *
 * Training: the upsampler of examples/train_upsampler.c, Conv3d(1, 4, 3,
 * s2, p1) -> ReLU -> ConvTranspose3d(4, 1, 4, s2, p1) on 8^3 volumes,
 * MSELoss, AdamW(lr 1e-2) + CosineAnnealingLR(T_max 10) stepped per step,
 * 10 steps on a global batch of 12 that is the same for every world size
 * (rank r takes samples [r*12/P, (r+1)*12/P)). Each rank seeds its model
 * differently (manual_seed(100 + rank)): DDP's broadcast must make them
 * rank 0's. Checked: the parameters after 10 steps are bitwise equal on
 * every rank, bitwise equal to a second run, and within 1e-6 relative of
 * one process training the same model (manual_seed(100)) on the whole
 * batch. */
#include "cgrad_distributed.h"
#include "cgrad_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;
static int rank, world;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        checks++;                                                              \
        if (!(cond)) {                                                         \
            char m_[900];                                                      \
            snprintf(m_, sizeof m_, __VA_ARGS__);                              \
            fail(__LINE__, m_);                                                \
        }                                                                      \
    } while (0)

#define OK(expr)                                                               \
    do {                                                                       \
        cg_status st_ = (expr);                                                \
        CHECK(st_ == CG_OK, "%s: %s: %s", #expr, cg_status_name(st_),          \
              cg_last_error());                                                \
    } while (0)

static void fail(int line, const char *msg)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "test_distributed.c:%d: FAILED: %s", line, msg);
    cg_dist_abort(buf);
    exit(1);
}

/* ---- broadcast ------------------------------------------------------------
 */

static float val_f(int r, int64_t i)
{
    /* magnitudes from 1e-3 to 1e3, so the summation order shows */
    return (float)(sin(0.37 * (double)i + 1.3 * r) *
                   pow(10.0, (double)(i % 7) - 3));
}

static double val_d(int r, int64_t i)
{
    return sin(0.37 * (double)i + 1.3 * r) * pow(10.0, (double)(i % 7) - 3);
}

static cg_tensor *rank_tensor(int r, int64_t n, cg_dtype dt)
{
    int64_t cn = cg_dtype_is_complex(dt) ? 2 * n : n;
    cg_tensor *t = NULL;
    if (dt == CG_FLOAT32 || dt == CG_COMPLEX64) {
        float *v = calloc((size_t)cn + 1, sizeof *v);
        for (int64_t i = 0; i < cn; i++)
            v[i] = val_f(r, i);
        OK(cg_tensor_from_data(v, &n, 1, dt, &t));
        free(v);
    } else {
        double *v = calloc((size_t)cn + 1, sizeof *v);
        for (int64_t i = 0; i < cn; i++)
            v[i] = val_d(r, i);
        OK(cg_tensor_from_data(v, &n, 1, dt, &t));
        free(v);
    }
    return t;
}

static void test_broadcast(void)
{
    const cg_dtype dts[2] = {CG_FLOAT32, CG_FLOAT64};
    for (int k = 0; k < 2; k++) {
        for (int src = 0; src < world; src++) {
            cg_tensor *t = rank_tensor(rank, 37, dts[k]);
            cg_tensor *want = rank_tensor(src, 37, dts[k]);
            OK(cg_tensor_requires_grad_(t, true)); /* allowed, as in torch */
            OK(cg_dist_broadcast(t, src));
            CHECK(memcmp(cg_tensor_data(t), cg_tensor_data(want),
                         37 * cg_dtype_size(dts[k])) == 0,
                  "broadcast from %d (%s) differs", src, cg_dtype_name(dts[k]));
            cg_tensor_release(t);
            cg_tensor_release(want);
        }
    }
    /* a non-contiguous view is written through */
    int64_t shape[2] = {3, 4};
    cg_tensor *base = NULL, *tr = NULL;
    OK(cg_full(shape, 2, rank + 1.0, CG_FLOAT32, &base));
    OK(cg_tensor_transpose(base, 0, 1, &tr));
    OK(cg_dist_broadcast(tr, world - 1));
    const float *b = cg_tensor_data(base);
    for (int i = 0; i < 12; i++)
        CHECK(b[i] == (float)world, "transposed broadcast element %d: %g", i,
              b[i]);
    cg_tensor_release(tr);
    cg_tensor_release(base);
    cg_tensor *t = rank_tensor(rank, 3, CG_FLOAT32);
    cg_status st = cg_dist_broadcast(t, world);
    CHECK(st == CG_ERR_RUNTIME, "bad src: %s", cg_status_name(st));
    char want[64];
    snprintf(want, sizeof want, "invalid root rank: %d", world);
    CHECK(strcmp(cg_last_error(), want) == 0, "bad src message: %s",
          cg_last_error());
    cg_tensor_release(t);
}

/* ---- all-reduce -------------------------------------------------------------
 */

/* The expected result, computed here the way the reduction must: rank
 * order 0, 1, ..., P-1 in the tensor's precision. */
static void expect_f(int64_t i, cg_reduce_op op, float *out)
{
    float a = val_f(0, i);
    for (int r = 1; r < world; r++) {
        float x = val_f(r, i);
        a = op == CG_REDUCE_MIN   ? (x < a ? x : a)
            : op == CG_REDUCE_MAX ? (x > a ? x : a)
                                  : a + x;
    }
    *out = op == CG_REDUCE_AVG ? a / (float)world : a;
}

static void expect_d(int64_t i, cg_reduce_op op, double *out)
{
    double a = val_d(0, i);
    for (int r = 1; r < world; r++) {
        double x = val_d(r, i);
        a = op == CG_REDUCE_MIN   ? (x < a ? x : a)
            : op == CG_REDUCE_MAX ? (x > a ? x : a)
                                  : a + x;
    }
    *out = op == CG_REDUCE_AVG ? a / world : a;
}

static void test_all_reduce(void)
{
    /* empty, fewer elements than ranks, not divisible, larger */
    const int64_t sizes[] = {0, 1, world - 1, 7, 1001, 100003};
    const cg_dtype dts[] = {CG_FLOAT32, CG_FLOAT64, CG_COMPLEX64};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int k = 0; k < 3; k++)
            for (int op = 0; op < CG_REDUCE_OP_COUNT; op++) {
                cg_dtype dt = dts[k];
                if (dt == CG_COMPLEX64 && op >= CG_REDUCE_MIN)
                    continue;
                int64_t n = sizes[s], cn = dt == CG_COMPLEX64 ? 2 * n : n;
                cg_tensor *t = rank_tensor(rank, n, dt);
                OK(cg_dist_all_reduce(t, (cg_reduce_op)op));
                int64_t bad = -1;
                for (int64_t i = 0; i < cn && bad < 0; i++) {
                    if (dt == CG_FLOAT64) {
                        double w;
                        expect_d(i, (cg_reduce_op)op, &w);
                        if (memcmp(&w, (double *)cg_tensor_data(t) + i,
                                   sizeof w))
                            bad = i;
                    } else {
                        float w;
                        expect_f(i, (cg_reduce_op)op, &w);
                        if (memcmp(&w, (float *)cg_tensor_data(t) + i,
                                   sizeof w))
                            bad = i;
                    }
                }
                CHECK(bad < 0,
                      "all_reduce %s %s n=%lld: element %lld is not the "
                      "rank-order result",
                      cg_reduce_op_name((cg_reduce_op)op), cg_dtype_name(dt),
                      (long long)n, (long long)bad);
                cg_tensor_release(t);
            }
    cg_tensor *c = rank_tensor(rank, 4, CG_COMPLEX64);
    cg_status st = cg_dist_all_reduce(c, CG_REDUCE_MAX);
    CHECK(st == CG_ERR_RUNTIME &&
              strcmp(cg_last_error(), "all_reduce does not support MAX on "
                                      "complex tensors") == 0,
          "complex MAX: %s", cg_last_error());
    cg_tensor_release(c);
}

/* ---- the model -------------------------------------------------------------
 */

#define S 8
#define C 4
#define GLOBAL 12
#define STEPS 10

static cg_module *make_model(uint64_t seed, int channels, bool bias,
                             cg_dtype dt)
{
    cg_manual_seed(seed);
    cg_module *seq = NULL, *down = NULL, *relu = NULL, *up = NULL;
    cg_conv3d_opts co = cg_conv3d_options(1, channels, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    co.bias = bias;
    co.dtype = dt;
    cg_conv_transpose3d_opts uo =
        cg_conv_transpose3d_options(channels, 1, CG_INT3(4));
    uo.stride = CG_INT3(2);
    uo.padding = CG_INT3(1);
    uo.dtype = dt;
    OK(cg_sequential_new(&seq));
    OK(cg_conv3d_new(&co, &down));
    OK(cg_relu_new(&relu));
    OK(cg_conv_transpose3d_new(&uo, &up));
    OK(cg_sequential_append(seq, down));
    OK(cg_sequential_append(seq, relu));
    OK(cg_sequential_append(seq, up));
    cg_module_free(down);
    cg_module_free(relu);
    cg_module_free(up);
    return seq;
}

/* Step `step`'s global batch: inputs and targets (GLOBAL, 1, S, S, S),
 * the same on every rank. */
static void global_batch(int step, cg_tensor **x, cg_tensor **y)
{
    cg_generator *g = NULL;
    OK(cg_generator_new(1000 + (uint64_t)step, &g));
    const int64_t shape[5] = {GLOBAL, 1, S, S, S};
    OK(cg_randn(shape, 5, CG_FLOAT32, g, x));
    OK(cg_rand(shape, 5, CG_FLOAT32, g, y));
    cg_generator_free(g);
}

static int num_params(cg_module *m)
{
    return cg_module_num_parameters(m);
}

static cg_tensor *param(cg_module *m, int i)
{
    cg_tensor *p = NULL;
    OK(cg_module_named_parameter(m, i, NULL, &p));
    return p;
}

/* STEPS steps of training on this rank's share of each global batch
 * (lo..hi), through DDP when ddp is given. */
static void train(cg_module *model, cg_ddp *ddp, int64_t lo, int64_t hi)
{
    int np = num_params(model);
    cg_tensor *params[8];
    for (int i = 0; i < np; i++)
        params[i] = param(model, i);
    cg_optimizer *opt = NULL;
    cg_lr_scheduler *sched = NULL;
    cg_module *loss_fn = NULL;
    cg_adamw_options ao = cg_adamw_defaults();
    ao.lr = 1e-2;
    OK(cg_adamw_new(params, np, &ao, &opt));
    cg_cosine_annealing_lr_options so = cg_cosine_annealing_lr_defaults(STEPS);
    OK(cg_cosine_annealing_lr_new(opt, &so, &sched));
    OK(cg_mse_loss_new(NULL, &loss_fn));
    for (int step = 0; step < STEPS; step++) {
        cg_tensor *x = NULL, *y = NULL, *xs = NULL, *ys = NULL, *pred = NULL,
                  *loss = NULL;
        global_batch(step, &x, &y);
        OK(cg_tensor_narrow(x, 0, lo, hi - lo, &xs));
        OK(cg_tensor_narrow(y, 0, lo, hi - lo, &ys));
        OK(cg_optimizer_zero_grad(opt, false));
        if (ddp)
            OK(cg_ddp_forward(ddp, xs, &pred));
        else
            OK(cg_module_forward(model, xs, &pred));
        OK(cg_loss_forward(loss_fn, pred, ys, &loss));
        OK(cg_tensor_backward(loss, NULL, false));
        OK(cg_optimizer_step(opt));
        OK(cg_lr_scheduler_step(sched));
        cg_tensor *all[] = {x, y, xs, ys, pred, loss};
        for (int i = 0; i < 6; i++)
            cg_tensor_release(all[i]);
    }
    cg_lr_scheduler_free(sched);
    cg_optimizer_free(opt);
    cg_module_free(loss_fn);
}

/* Bitwise equal on every rank: each rank compares with rank 0's copy,
 * and all agree on the verdict. */
static void check_equal_across_ranks(cg_module *m, const char *what)
{
    float mismatch = 0;
    for (int i = 0; i < num_params(m); i++) {
        cg_tensor *p = param(m, i), *c = NULL;
        OK(cg_tensor_clone(p, &c));
        OK(cg_dist_broadcast(c, 0));
        if (memcmp(cg_tensor_data(c), cg_tensor_data(p),
                   (size_t)cg_tensor_numel(p) * sizeof(float)))
            mismatch = 1;
        cg_tensor_release(c);
    }
    int64_t one = 1;
    cg_tensor *flag = NULL;
    OK(cg_tensor_from_data(&mismatch, &one, 1, CG_FLOAT32, &flag));
    OK(cg_dist_all_reduce(flag, CG_REDUCE_MAX));
    float any = *(const float *)cg_tensor_data(flag);
    cg_tensor_release(flag);
    CHECK(any == 0, "%s: parameters differ between ranks (this rank %s)", what,
          mismatch ? "differs from rank 0" : "equals rank 0");
}

static void test_training(double *max_rel)
{
    int64_t lo = (int64_t)GLOBAL * rank / world,
            hi = (int64_t)GLOBAL * (rank + 1) / world;
    cg_module *runs[2] = {NULL, NULL};
    for (int run = 0; run < 2; run++) {
        /* a different init on every rank: DDP must broadcast rank 0's */
        cg_module *m = make_model(100 + (uint64_t)rank, C, true, CG_FLOAT32);
        cg_ddp *ddp = NULL;
        cg_ddp_options o = cg_ddp_defaults();
        OK(cg_ddp_new(m, &o, &ddp));
        CHECK(cg_ddp_module(ddp) == m, "ddp.module");
        /* 4 parameters, 0.0 MB: one bucket, the last parameter first */
        int count = 0;
        const int *b0 = cg_ddp_bucket(ddp, 0, &count);
        CHECK(cg_ddp_num_buckets(ddp) == 1 && count == 4 && b0[0] == 0 &&
                  b0[3] == 3,
              "bucket assignment");
        if (run == 0) {
            cg_module *ref = make_model(100, C, true, CG_FLOAT32);
            for (int i = 0; i < num_params(m); i++)
                CHECK(memcmp(cg_tensor_data(param(m, i)),
                             cg_tensor_data(param(ref, i)),
                             (size_t)cg_tensor_numel(param(m, i)) *
                                 sizeof(float)) == 0,
                      "after wrap, parameter %d is not rank 0's", i);
            cg_module_free(ref);
        }
        train(m, ddp, lo, hi);
        check_equal_across_ranks(m, "after 10 steps");
        cg_ddp_free(ddp);
        runs[run] = m;
    }
    /* determinism: the second run is bitwise the first */
    for (int i = 0; i < num_params(runs[0]); i++)
        CHECK(memcmp(cg_tensor_data(param(runs[0], i)),
                     cg_tensor_data(param(runs[1], i)),
                     (size_t)cg_tensor_numel(param(runs[0], i)) *
                         sizeof(float)) == 0,
              "second run differs in parameter %d", i);
    /* one process, the whole batch */
    cg_module *ref = make_model(100, C, true, CG_FLOAT32);
    train(ref, NULL, 0, GLOBAL);
    *max_rel = 0;
    for (int i = 0; i < num_params(ref); i++) {
        cg_tensor *p = param(runs[0], i), *q = param(ref, i);
        const float *a = cg_tensor_data(p), *b = cg_tensor_data(q);
        double scale = 0, diff = 0;
        for (int64_t e = 0; e < cg_tensor_numel(q); e++) {
            scale = fmax(scale, fabs(b[e]));
            diff = fmax(diff, fabs((double)a[e] - b[e]));
        }
        double rel = diff / scale;
        *max_rel = fmax(*max_rel, rel);
        CHECK(rel <= 1e-6,
              "parameter %d: max |ddp - single| / max |single| = %.3g", i, rel);
    }
    cg_module_free(ref);
    cg_module_free(runs[0]);
    cg_module_free(runs[1]);
}

/* ---- wrap-time checks
 * --------------------------------------------------------
 */

static void test_mismatch(void)
{
    /* rank 1 has 8 channels instead of 4: sizes differ at params[0] */
    cg_module *m = make_model(7, rank == 1 ? 8 : C, true, CG_FLOAT32);
    cg_ddp *ddp = NULL;
    cg_status st = cg_ddp_new(m, NULL, &ddp);
    const char *sizes =
        "params[0] (\"0.weight\") in this process with sizes [8, 1, 3, 3, 3] "
        "appears not to match sizes of the same param in process 0.";
    char want[1024];
    if (rank == 1)
        snprintf(want, sizeof want, "%s", sizes);
    else
        snprintf(want, sizeof want,
                 "DDP expects same model across all ranks: rank 1 (this is "
                 "rank %d) reports: %s",
                 rank, sizes);
    CHECK(st == CG_ERR_RUNTIME && ddp == NULL, "sizes: %s", cg_status_name(st));
    CHECK(strcmp(cg_last_error(), want) == 0, "sizes message: %s",
          cg_last_error());
    cg_module_free(m);

    /* rank 1 without the first bias: 3 parameters against 4 */
    m = make_model(7, C, rank != 1, CG_FLOAT32);
    st = cg_ddp_new(m, NULL, &ddp);
    if (rank == 1)
        snprintf(want, sizeof want,
                 "DDP expects same model across all ranks, but Rank 1 has 3 "
                 "params, while rank 0 has inconsistent 4 params.");
    else
        snprintf(want, sizeof want,
                 "DDP expects same model across all ranks, but Rank %d has 4 "
                 "params, while rank 1 has inconsistent 3 params.",
                 rank);
    CHECK(st == CG_ERR_RUNTIME && strcmp(cg_last_error(), want) == 0,
          "count message: %s", cg_last_error());
    cg_module_free(m);

    /* the last rank in float64 */
    m = make_model(7, C, true, rank == world - 1 ? CG_FLOAT64 : CG_FLOAT32);
    st = cg_ddp_new(m, NULL, &ddp);
    const char *dtype =
        "params[0] (\"0.weight\") in this process with dtype torch.float64 "
        "appears not to match dtype torch.float32 of the same param in "
        "process 0.";
    if (rank == world - 1)
        snprintf(want, sizeof want, "%s", dtype);
    else
        snprintf(want, sizeof want,
                 "DDP expects same model across all ranks: rank %d (this is "
                 "rank %d) reports: %s",
                 world - 1, rank, dtype);
    CHECK(st == CG_ERR_RUNTIME && strcmp(cg_last_error(), want) == 0,
          "dtype message: %s", cg_last_error());
    cg_module_free(m);

    /* nothing to train */
    m = make_model(7, C, true, CG_FLOAT32);
    OK(cg_module_requires_grad_(m, false));
    st = cg_ddp_new(m, NULL, &ddp);
    CHECK(st == CG_ERR_RUNTIME &&
              strcmp(cg_last_error(),
                     "DistributedDataParallel is not needed when a module "
                     "doesn't have any parameter that requires a "
                     "gradient.") == 0,
          "no-grad message: %s", cg_last_error());
    cg_module_free(m);
}

/* A module with parameters a and b whose forward uses only a: b never
 * gets a gradient, the reduction cannot finish, and the next forward says
 * so in PyTorch's words. */
static cg_status half_forward(cg_module *self, cg_tensor *x, cg_tensor **out)
{
    return cg_mul(x, cg_module_get_parameter(self, "a"), out);
}

static void test_unused_parameter(void)
{
    static const cg_module_type type = {"Half", half_forward, NULL, NULL};
    cg_module *m = NULL;
    OK(cg_module_new_custom(&type, NULL, &m));
    int64_t three = 3;
    cg_tensor *a = NULL, *b = NULL, *x = NULL, *y = NULL, *loss = NULL;
    OK(cg_ones(&three, 1, CG_FLOAT32, &a));
    OK(cg_ones(&three, 1, CG_FLOAT32, &b));
    OK(cg_module_register_parameter(m, "a", a));
    OK(cg_module_register_parameter(m, "b", b));
    cg_ddp *ddp = NULL;
    OK(cg_ddp_new(m, NULL, &ddp));
    OK(cg_full(&three, 1, 2.0, CG_FLOAT32, &x));
    OK(cg_ddp_forward(ddp, x, &y));
    OK(cg_sum(y, &loss));
    OK(cg_tensor_backward(loss, NULL, false));
    cg_tensor_release(y);
    y = NULL;
    cg_status st = cg_ddp_forward(ddp, x, &y);
    char want[2048];
    snprintf(
        want, sizeof want,
        "Expected to have finished reduction in the prior iteration before "
        "starting a new one. This error indicates that your module has "
        "parameters that were not used in producing loss. You can enable "
        "unused parameter detection by passing the keyword argument "
        "`find_unused_parameters=True` to "
        "`torch.nn.parallel.DistributedDataParallel`, and by \nmaking sure "
        "all `forward` function outputs participate in calculating loss. "
        "\nIf you already have done the above, then the distributed data "
        "parallel module wasn't able to locate the output tensors in the "
        "return value of your module's `forward` function. Please include "
        "the loss function and the structure of the return value of "
        "`forward` of your module when reporting this issue (e.g. list, "
        "dict, iterable).\nParameter indices which did not receive grad for "
        "rank %d: 1\n In addition, you can set the environment variable "
        "TORCH_DISTRIBUTED_DEBUG to either INFO or DETAIL to print out "
        "information about which particular parameters did not receive "
        "gradient on this rank as part of this error",
        rank);
    CHECK(st == CG_ERR_RUNTIME && y == NULL, "unused: %s", cg_status_name(st));
    CHECK(strcmp(cg_last_error(), want) == 0, "unused message: %s",
          cg_last_error());
    /* under no_sync the parameter's own gradient stays local */
    cg_ddp_free(ddp);
    cg_tensor *all[] = {a, b, x, loss};
    for (int i = 0; i < 4; i++)
        cg_tensor_release(all[i]);
    cg_module_free(m);
}

/* no_sync: backward only accumulates locally; with sync on again the
 * accumulated gradient is averaged, as PyTorch's no_sync. */
static void test_no_sync(void)
{
    cg_module *m = NULL;
    cg_linear_opts lo = cg_linear_options(2, 1);
    lo.bias = false;
    cg_manual_seed(3);
    OK(cg_linear_new(&lo, &m));
    cg_ddp *ddp = NULL;
    OK(cg_ddp_new(m, NULL, &ddp));
    cg_tensor *w = param(m, 0);
    float xv[2] = {(float)rank + 1, 2};
    int64_t shape[2] = {1, 2};
    double want0 = 0; /* sum over ranks of 2 (r + 1), averaged */
    for (int r = 0; r < world; r++)
        want0 += 2.0 * (r + 1);
    want0 /= world;
    for (int it = 0; it < 2; it++) {
        cg_ddp_set_require_backward_grad_sync(ddp, it == 1);
        cg_tensor *x = NULL, *y = NULL, *loss = NULL;
        OK(cg_tensor_from_data(xv, shape, 2, CG_FLOAT32, &x));
        OK(cg_ddp_forward(ddp, x, &y));
        OK(cg_sum(y, &loss));
        OK(cg_tensor_backward(loss, NULL, false));
        const float *g = cg_tensor_data(cg_tensor_grad(w));
        if (it == 0)
            CHECK(g[0] == (float)(rank + 1) && g[1] == 2.0f,
                  "no_sync grad %g %g", g[0], g[1]);
        else /* local 2 (r + 1), averaged over ranks */
            CHECK(fabs(g[0] - want0) < 1e-6 && fabs(g[1] - 4.0) < 1e-6,
                  "synced grad %g %g, want %g 4", g[0], g[1], want0);
        cg_tensor_release(x);
        cg_tensor_release(y);
        cg_tensor_release(loss);
    }
    cg_ddp_free(ddp);
    cg_module_free(m);
}

/* Buckets as PyTorch 1.13 forms them, for Linear(600, 600) layers (1.44
 * MB weights): dist._compute_bucket_assignment_by_size(params, [1 MiB,
 * cap]) reversed gives [[3], [1, 2], [0]] with a 1 MiB cap, [[1, 2, 3],
 * [0]] with 25 MiB, and [[3], [2], [1, 4, 5], [0]] for float32, float64,
 * float32 layers and a 2 MiB cap (printed by PyTorch). With several
 * buckets in flight, the gradients must still be the average over ranks
 * (checked against an all_reduce AVG of the local gradients). */
static cg_module *linears(int n, const cg_dtype *dts)
{
    cg_module *seq = NULL;
    OK(cg_sequential_new(&seq));
    cg_manual_seed(11);
    for (int i = 0; i < n; i++) {
        cg_linear_opts lo = cg_linear_options(600, 600);
        lo.dtype = dts[i];
        cg_module *l = NULL;
        OK(cg_linear_new(&lo, &l));
        OK(cg_sequential_append(seq, l));
        cg_module_free(l);
    }
    return seq;
}

static void check_buckets(cg_ddp *ddp, const char *want)
{
    char got[128] = "";
    for (int b = 0; b < cg_ddp_num_buckets(ddp); b++) {
        int count = 0;
        const int *idx = cg_ddp_bucket(ddp, b, &count);
        strcat(got, b ? ", [" : "[");
        for (int k = 0; k < count; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d",
                     k ? ", " : "", idx[k]);
        strcat(got, "]");
    }
    CHECK(strcmp(got, want) == 0, "buckets %s, PyTorch %s", got, want);
}

static void test_buckets(void)
{
    const cg_dtype f32[2] = {CG_FLOAT32, CG_FLOAT32};
    const cg_dtype mixed[3] = {CG_FLOAT32, CG_FLOAT64, CG_FLOAT32};
    cg_ddp_options o = cg_ddp_defaults();
    cg_module *m = linears(2, f32);
    cg_ddp *ddp = NULL;
    OK(cg_ddp_new(m, &o, &ddp));
    check_buckets(ddp, "[1, 2, 3], [0]");
    cg_ddp_free(ddp);
    o.bucket_cap_mb = 1;
    OK(cg_ddp_new(m, &o, &ddp));
    check_buckets(ddp, "[3], [1, 2], [0]");
    cg_module *mixed_m = linears(3, mixed);
    cg_ddp *mixed_ddp = NULL;
    o.bucket_cap_mb = 2;
    OK(cg_ddp_new(mixed_m, &o, &mixed_ddp));
    check_buckets(mixed_ddp, "[3], [2], [1, 4, 5], [0]");
    cg_ddp_free(mixed_ddp);
    cg_module_free(mixed_m);
    /* one step's gradients through 3 buckets against all_reduce AVG of
     * the local ones (a copy of the model run without DDP) */
    cg_module *local = linears(2, f32);
    int64_t shape[2] = {3, 600};
    cg_generator *g = NULL;
    OK(cg_generator_new(50 + (uint64_t)rank, &g));
    cg_tensor *x = NULL, *y = NULL, *yl = NULL, *loss = NULL, *ll = NULL;
    OK(cg_randn(shape, 2, CG_FLOAT32, g, &x));
    OK(cg_ddp_forward(ddp, x, &y));
    OK(cg_module_forward(local, x, &yl));
    OK(cg_sum(y, &loss));
    OK(cg_sum(yl, &ll));
    OK(cg_tensor_backward(loss, NULL, false));
    OK(cg_tensor_backward(ll, NULL, false));
    for (int i = 0; i < num_params(m); i++) {
        cg_tensor *gd = cg_tensor_grad(param(m, i));
        cg_tensor *gl = cg_tensor_grad(param(local, i));
        OK(cg_dist_all_reduce(gl, CG_REDUCE_AVG));
        bool dbl = cg_tensor_dtype(gd) == CG_FLOAT64;
        double scale = 0, diff = 0;
        for (int64_t e = 0; e < cg_tensor_numel(gd); e++) {
            double a = dbl ? ((double *)cg_tensor_data(gd))[e]
                           : ((float *)cg_tensor_data(gd))[e];
            double b = dbl ? ((double *)cg_tensor_data(gl))[e]
                           : ((float *)cg_tensor_data(gl))[e];
            scale = fmax(scale, fabs(b));
            diff = fmax(diff, fabs(a - b));
        }
        CHECK(diff <= (dbl ? 1e-14 : 1e-6) * scale,
              "bucketed gradient %d differs from the average: %g of %g", i,
              diff, scale);
    }
    cg_tensor *all[] = {x, y, yl, loss, ll};
    for (int i = 0; i < 5; i++)
        cg_tensor_release(all[i]);
    cg_generator_free(g);
    cg_ddp_free(ddp);
    cg_module_free(local);
    cg_module_free(m);
}

int main(int argc, char **argv)
{
    if (cg_dist_init(&argc, &argv) != CG_OK) {
        fprintf(stderr, "cg_dist_init: %s\n", cg_last_error());
        return 1;
    }
    rank = cg_dist_get_rank();
    world = cg_dist_get_world_size();
    cg_set_num_threads(1);
    CHECK(cg_dist_is_initialized(), "is_initialized");
    CHECK(rank >= 0 && rank < world, "rank %d of %d", rank, world);
    const char *env = getenv("OMPI_COMM_WORLD_SIZE");
    if (env)
        CHECK(atoi(env) == world, "world size %d, mpirun says %s", world, env);
    cg_status st = cg_dist_init(NULL, NULL);
    CHECK(st == CG_ERR_RUNTIME &&
              strcmp(cg_last_error(), "trying to initialize the default "
                                      "process group twice!") == 0,
          "second init: %s", cg_last_error());
    OK(cg_dist_barrier());

    test_broadcast();
    test_all_reduce();
    test_mismatch();
    test_unused_parameter();
    test_no_sync();
    test_buckets();
    double max_rel = 0;
    test_training(&max_rel);
    OK(cg_dist_barrier());
    if (rank == 0)
        printf("test_distributed: %d ranks, %d checks passed on rank 0; "
               "DDP vs one process after %d steps: max relative difference "
               "%.3g\n",
               world, checks, STEPS, max_rel);
    OK(cg_dist_finalize());
    CHECK(!cg_dist_is_initialized() && cg_dist_get_rank() == -1,
          "after finalize");
    st = cg_dist_barrier();
    if (st != CG_ERR_RUNTIME ||
        strcmp(cg_last_error(),
               "Default process group has not been initialized, please make "
               "sure to call init_process_group.") != 0) {
        fprintf(stderr, "barrier after finalize: %s\n", cg_last_error());
        return 1;
    }
    return 0;
}
