/*
 * test_sweep.c -- the fail-every-allocation sweep of issue 9 over a whole
 * training scenario, through the public API only:
 *
 *   build      seed 0; Sequential(Conv3d(1, 2, 3, stride 2, padding 1),
 *              ReLU(), ConvTranspose3d(2, 1, 4, stride 2, padding 1)),
 *              MSELoss, input and target randn(1, 1, 4, 4, 4); a second
 *              model (seed 1) that the load step overwrites
 *   optimizer  AdamW(lr 1e-2) and CosineAnnealingLR(T_max 10)
 *   forward    y = model(x)
 *   loss       l = MSELoss(y, target)
 *   backward   l.backward()
 *   opt step   AdamW step
 *   sched step CosineAnnealingLR step
 *   save       model.state_dict() -> safetensors file in a temp dir
 *   load       safetensors file -> second model.load_state_dict(strict)
 *   print      repr(model), repr(model[0].weight)
 *
 * The scenario runs once with a counting allocator to find how many
 * allocations each step makes. Then, for N = 1..count, it runs again with
 * allocation N failing. The step holding allocation N must return
 * CG_ERR_NOMEM with a message; everything the scenario holds (parameters,
 * their .grad, the forward output and loss, the optimizer's state_dict,
 * the learning rates, the second model) must be bit for bit what it was
 * before that step; the step is then retried and the rest of the scenario
 * run, and its final state must equal the clean run's (so the objects
 * are still valid); finally everything is freed and the live block count
 * must return to 0 (LeakSanitizer checks the same in the ASan build).
 * Allocations the checks themselves make (snapshots) are neither counted
 * nor failed. The thread count is 1 so the allocation sequence is
 * deterministic.
 *
 * The summary line the closing note quotes is printed to stdout:
 *   sweep: T allocations failed across 10 steps: build a, ...,
 *   0 crashes, 0 leaks, 0 changed objects
 */
#define _GNU_SOURCE /* mkdtemp */
#include "testutil.h"

#include "cgrad_nn.h"
#include "cgrad_optim.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ======================================================================
 * The allocator: counts and fails only while armed; tracks live blocks
 * always
 * ====================================================================== */

static atomic_long sw_count; /* armed allocations so far */
static atomic_long sw_live;  /* blocks alive (all, armed or not) */
static long sw_fail_at;      /* armed allocation that fails, 0: none */
static atomic_bool sw_armed;
static atomic_bool sw_failed;

static bool sw_should_fail(void)
{
    if (!atomic_load(&sw_armed))
        return false;
    long n = atomic_fetch_add(&sw_count, 1) + 1;
    if (n == sw_fail_at) {
        atomic_store(&sw_failed, true);
        return true;
    }
    return false;
}

static void *sw_malloc(size_t size, void *user)
{
    (void)user;
    if (sw_should_fail())
        return NULL;
    void *p = malloc(size);
    if (p)
        atomic_fetch_add(&sw_live, 1);
    return p;
}

static void *sw_realloc(void *p, size_t size, void *user)
{
    (void)user;
    if (sw_should_fail())
        return NULL;
    void *q = realloc(p, size);
    if (q && !p)
        atomic_fetch_add(&sw_live, 1);
    return q;
}

static void sw_free(void *p, void *user)
{
    (void)user;
    if (p)
        atomic_fetch_sub(&sw_live, 1);
    free(p);
}

/* ======================================================================
 * The scenario
 * ====================================================================== */

enum {
    S_BUILD,
    S_OPTIMIZER,
    S_FORWARD,
    S_LOSS,
    S_BACKWARD,
    S_OPT_STEP,
    S_SCHED_STEP,
    S_SAVE,
    S_LOAD,
    S_PRINT,
    S_COUNT
};

static const char *const STEP_NAMES[S_COUNT] = {
    "build",    "optimizer",  "forward", "loss", "backward",
    "opt step", "sched step", "save",    "load", "print"};

static const char MODEL_REPR[] =
    "Sequential(\n"
    "  (0): Conv3d(1, 2, kernel_size=(3, 3, 3), stride=(2, 2, 2), "
    "padding=(1, 1, 1))\n"
    "  (1): ReLU()\n"
    "  (2): ConvTranspose3d(2, 1, kernel_size=(4, 4, 4), stride=(2, 2, 2), "
    "padding=(1, 1, 1))\n"
    ")";

typedef struct world {
    cg_module *model, *model2, *mse;
    cg_tensor *x, *target, *y, *loss;
    cg_optimizer *opt;
    cg_lr_scheduler *sched;
    const char *path;               /* the safetensors file */
    char *model_repr, *weight_repr; /* malloc'd by the test (print step) */
} world;

static void world_free(world *w)
{
    cg_lr_scheduler_free(w->sched);
    cg_optimizer_free(w->opt);
    cg_tensor_release(w->loss);
    cg_tensor_release(w->y);
    cg_tensor_release(w->target);
    cg_tensor_release(w->x);
    cg_module_free(w->mse);
    cg_module_free(w->model2);
    cg_module_free(w->model);
    free(w->model_repr);
    free(w->weight_repr);
    const char *path = w->path;
    *w = (world){0};
    w->path = path;
}

/* Sequential(Conv3d(1,2,3,s2,p1), ReLU, ConvTranspose3d(2,1,4,s2,p1)) */
static cg_status build_model(cg_module **out)
{
    cg_module *seq = NULL, *conv = NULL, *relu = NULL, *convt = NULL;
    cg_conv3d_opts co = cg_conv3d_options(1, 2, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(2, 1, CG_INT3(4));
    to.stride = CG_INT3(2);
    to.padding = CG_INT3(1);
    cg_status st;
    if ((st = cg_sequential_new(&seq)) != CG_OK ||
        (st = cg_conv3d_new(&co, &conv)) != CG_OK ||
        (st = cg_relu_new(&relu)) != CG_OK ||
        (st = cg_conv_transpose3d_new(&to, &convt)) != CG_OK ||
        (st = cg_sequential_append(seq, conv)) != CG_OK ||
        (st = cg_sequential_append(seq, relu)) != CG_OK ||
        (st = cg_sequential_append(seq, convt)) != CG_OK) {
        cg_module_free(seq);
        seq = NULL;
    }
    cg_module_free(conv);
    cg_module_free(relu);
    cg_module_free(convt);
    *out = seq;
    return st;
}

/* Each step either succeeds and stores its results in w, or fails and
 * leaves w as it was (what it made on the way is freed). */
static cg_status step_build(world *w)
{
    static const int64_t shape[5] = {1, 1, 4, 4, 4};
    cg_module *model = NULL, *model2 = NULL, *mse = NULL;
    cg_tensor *x = NULL, *target = NULL;
    cg_status st;
    cg_manual_seed(0);
    if ((st = build_model(&model)) != CG_OK ||
        (st = cg_randn(shape, 5, CG_FLOAT32, NULL, &x)) != CG_OK ||
        (st = cg_randn(shape, 5, CG_FLOAT32, NULL, &target)) != CG_OK ||
        (st = cg_mse_loss_new("mean", &mse)) != CG_OK)
        goto fail;
    cg_manual_seed(1);
    if ((st = build_model(&model2)) != CG_OK)
        goto fail;
    w->model = model;
    w->model2 = model2;
    w->mse = mse;
    w->x = x;
    w->target = target;
    return CG_OK;
fail:
    cg_module_free(model);
    cg_module_free(model2);
    cg_module_free(mse);
    cg_tensor_release(x);
    cg_tensor_release(target);
    return st;
}

static cg_status step_optimizer(world *w)
{
    cg_tensor *params[8];
    int n = cg_module_num_parameters(w->model);
    ck_assert_int_eq(n, 4);
    for (int i = 0; i < n; i++)
        tu_ok(cg_module_named_parameter(w->model, i, NULL, &params[i]));
    cg_adamw_options o = cg_adamw_defaults();
    o.lr = 1e-2;
    cg_optimizer *opt = NULL;
    cg_lr_scheduler *sched = NULL;
    cg_status st = cg_adamw_new(params, n, &o, &opt);
    if (st != CG_OK)
        return st;
    cg_cosine_annealing_lr_options so = cg_cosine_annealing_lr_defaults(10);
    if ((st = cg_cosine_annealing_lr_new(opt, &so, &sched)) != CG_OK) {
        cg_optimizer_free(opt);
        return st;
    }
    w->opt = opt;
    w->sched = sched;
    return CG_OK;
}

static cg_status step_forward(world *w)
{
    return cg_module_forward(w->model, w->x, &w->y);
}

static cg_status step_loss(world *w)
{
    return cg_loss_forward(w->mse, w->y, w->target, &w->loss);
}

static cg_status step_backward(world *w)
{
    return cg_tensor_backward(w->loss, NULL, false);
}

static cg_status step_opt_step(world *w)
{
    return cg_optimizer_step(w->opt);
}

static cg_status step_sched_step(world *w)
{
    return cg_lr_scheduler_step(w->sched);
}

static cg_status step_save(world *w)
{
    cg_state_dict *sd = NULL;
    cg_status st = cg_module_state_dict(w->model, &sd);
    if (st == CG_OK)
        st = cg_safetensors_save(sd, w->path);
    cg_state_dict_free(sd);
    return st;
}

static cg_status step_load(world *w)
{
    cg_state_dict *sd = NULL;
    cg_status st = cg_safetensors_load(w->path, &sd);
    if (st == CG_OK)
        st = cg_module_load_state_dict(w->model2, sd, true);
    cg_state_dict_free(sd);
    return st;
}

/* repr into a test-owned buffer: measure, then write. */
static cg_status step_print(world *w)
{
    size_t n = 0, n2 = 0;
    cg_status st = cg_module_repr(w->model, NULL, 0, &n);
    if (st != CG_OK)
        return st;
    char *m = malloc(n + 1);
    ck_assert_ptr_nonnull(m);
    if ((st = cg_module_repr(w->model, m, n + 1, &n2)) != CG_OK) {
        free(m);
        return st;
    }
    ck_assert_uint_eq(n, n2);
    cg_tensor *weight = NULL;
    tu_ok(cg_module_named_parameter(w->model, 0, NULL, &weight));
    if ((st = cg_tensor_repr(weight, NULL, 0, &n)) != CG_OK) {
        free(m);
        return st;
    }
    char *t = malloc(n + 1);
    ck_assert_ptr_nonnull(t);
    if ((st = cg_tensor_repr(weight, t, n + 1, &n2)) != CG_OK) {
        free(m);
        free(t);
        return st;
    }
    ck_assert_uint_eq(n, n2);
    w->model_repr = m;
    w->weight_repr = t;
    return CG_OK;
}

static cg_status (*const STEPS[S_COUNT])(world *) = {
    step_build,    step_optimizer,  step_forward, step_loss, step_backward,
    step_opt_step, step_sched_step, step_save,    step_load, step_print};

/* ======================================================================
 * Snapshots: everything observable the world holds, as bytes
 * ====================================================================== */

typedef struct blob {
    unsigned char *p;
    size_t n, cap;
} blob;

static void blob_put(blob *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        ck_assert_ptr_nonnull(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void blob_tensor(blob *b, const cg_tensor *t)
{
    int64_t present = t != NULL;
    blob_put(b, &present, sizeof present);
    if (!t)
        return;
    int nd = cg_tensor_dim(t);
    int dt = (int)cg_tensor_dtype(t);
    blob_put(b, &nd, sizeof nd);
    blob_put(b, &dt, sizeof dt);
    blob_put(b, cg_tensor_shape(t), (size_t)nd * sizeof(int64_t));
    int64_t n = cg_tensor_numel(t);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tu_ok(cg_tensor_to_doubles(t, v, n));
    blob_put(b, v, (size_t)n * sizeof *v);
    free(v);
}

static void blob_module(blob *b, const cg_module *m)
{
    int n = m ? cg_module_num_parameters(m) : 0;
    blob_put(b, &n, sizeof n);
    for (int i = 0; i < n; i++) {
        cg_tensor *p = NULL;
        const char *name = NULL;
        tu_ok(cg_module_named_parameter(m, i, &name, &p));
        blob_put(b, name, strlen(name) + 1);
        blob_tensor(b, p);
        blob_tensor(b, cg_tensor_grad(p));
    }
}

/* The world's state; allocations made here are not armed. */
static blob snapshot(const world *w)
{
    bool armed = atomic_exchange(&sw_armed, false);
    blob b = {0};
    blob_module(&b, w->model);
    blob_module(&b, w->model2);
    blob_tensor(&b, w->x);
    blob_tensor(&b, w->target);
    blob_tensor(&b, w->y);
    blob_tensor(&b, w->loss);
    int64_t has_opt = w->opt != NULL;
    blob_put(&b, &has_opt, sizeof has_opt);
    if (w->opt) {
        cg_state_dict *sd = NULL;
        tu_ok(cg_optimizer_state_dict(w->opt, &sd));
        int n = cg_state_dict_size(sd);
        blob_put(&b, &n, sizeof n);
        for (int i = 0; i < n; i++) {
            const char *name;
            cg_state_kind kind;
            cg_tensor *t;
            double num;
            tu_ok(cg_state_dict_entry(sd, i, &name, &kind, &t, &num));
            blob_put(&b, name, strlen(name) + 1);
            blob_put(&b, &kind, sizeof kind);
            blob_put(&b, &num, sizeof num);
            blob_tensor(&b, t);
        }
        cg_state_dict_free(sd);
        double lr = 0;
        tu_ok(cg_optimizer_get_lr(w->opt, 0, &lr));
        blob_put(&b, &lr, sizeof lr);
    }
    if (w->sched) {
        double lrs[4];
        int n = 0;
        tu_ok(cg_lr_scheduler_get_last_lr(w->sched, lrs, 4, &n));
        blob_put(&b, &n, sizeof n);
        blob_put(&b, lrs, (size_t)n * sizeof *lrs);
        int64_t epoch = cg_lr_scheduler_last_epoch(w->sched);
        blob_put(&b, &epoch, sizeof epoch);
    }
    if (w->model_repr)
        blob_put(&b, w->model_repr, strlen(w->model_repr) + 1);
    if (w->weight_repr)
        blob_put(&b, w->weight_repr, strlen(w->weight_repr) + 1);
    atomic_store(&sw_armed, armed);
    return b;
}

static bool blob_eq(const blob *a, const blob *b)
{
    return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

/* ======================================================================
 * The sweep
 * ====================================================================== */

static char sweep_dir[64];
static char sweep_path[128];

static void make_temp_dir(void)
{
    snprintf(sweep_dir, sizeof sweep_dir, "/tmp/cgrad_sweep_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sweep_dir));
    snprintf(sweep_path, sizeof sweep_path, "%s/model.safetensors", sweep_dir);
}

static void remove_temp_dir(void)
{
    unlink(sweep_path);
    rmdir(sweep_dir);
}

/* The clean run: allocations per step, and the final state. */
static void clean_run(long per_step[S_COUNT], blob *final)
{
    world w = {.path = sweep_path};
    atomic_store(&sw_live, 0);
    for (int s = 0; s < S_COUNT; s++) {
        /* as the sweep does: a snapshot before each step (it fills the
         * modules' lazily built parameter lists, which then stay) */
        blob before = snapshot(&w);
        free(before.p);
        atomic_store(&sw_count, 0);
        sw_fail_at = 0;
        atomic_store(&sw_armed, true);
        cg_status st = STEPS[s](&w);
        atomic_store(&sw_armed, false);
        ck_assert_msg(st == CG_OK, "clean run: step %s fails: %s: %s",
                      STEP_NAMES[s], cg_status_name(st), cg_last_error());
        per_step[s] = atomic_load(&sw_count);
    }
    /* the values the scenario must reach */
    ck_assert_str_eq(w.model_repr, MODEL_REPR);
    ck_assert_msg(
        strncmp(w.weight_repr, "Parameter containing:\ntensor(", 29) == 0,
        "weight repr: %s", w.weight_repr);
    ck_assert_msg(strstr(w.weight_repr, "requires_grad=True)") != NULL,
                  "weight repr: %s", w.weight_repr);
    for (int i = 0; i < 4; i++) { /* the load made model2 equal to model */
        cg_tensor *a, *b;
        tu_ok(cg_module_named_parameter(w.model, i, NULL, &a));
        tu_ok(cg_module_named_parameter(w.model2, i, NULL, &b));
        tu_assert_bitwise(b, a, "loaded parameter");
    }
    double lr = 0;
    tu_ok(cg_optimizer_get_lr(w.opt, 0, &lr));
    /* CosineAnnealingLR(T_max 10) after one step: eta_min + (lr - eta_min)
     * * (1 + cos(pi / 10)) / 2, PyTorch's chainable form */
    ck_assert_double_eq_tol(lr, 1e-2 * (1 + 0.95105651629515357) / 2, 1e-15);
    *final = snapshot(&w);
    world_free(&w);
    ck_assert_int_eq(atomic_load(&sw_live), 0);
}

START_TEST(test_sweep_full_scenario)
{
    tu_ok(cg_set_num_threads(1));
    make_temp_dir();
    cg_allocator a = {sw_malloc, sw_realloc, sw_free, NULL};
    tu_ok(cg_set_allocator(&a));

    /* twice: the allocation sequence must not depend on what ran before */
    long per_step[S_COUNT], again[S_COUNT];
    blob final = {0}, final2 = {0};
    clean_run(per_step, &final);
    clean_run(again, &final2);
    for (int s = 0; s < S_COUNT; s++)
        ck_assert_msg(per_step[s] == again[s],
                      "step %s: %ld allocations in the first clean run, %ld "
                      "in the second",
                      STEP_NAMES[s], per_step[s], again[s]);
    ck_assert_msg(blob_eq(&final, &final2), "two clean runs end differently");
    free(final2.p);
    long total = 0;
    for (int s = 0; s < S_COUNT; s++)
        total += per_step[s];

    long failed_in[S_COUNT] = {0};
    long wrong_status = 0, no_message = 0, not_reached = 0, leaks = 0,
         changed = 0, invalid = 0, problems = 0;
    for (long n = 1; n <= total; n++) {
        /* the step holding allocation n, and its number within the step */
        int s = 0;
        long k = n;
        while (k > per_step[s])
            k -= per_step[s++];
        world w = {.path = sweep_path};
        atomic_store(&sw_live, 0);
        atomic_store(&sw_failed, false);
        for (int i = 0; i < s; i++) /* the steps before run clean */
            tu_ok(STEPS[i](&w));
        blob before = snapshot(&w);
        atomic_store(&sw_count, 0);
        sw_fail_at = k;
        atomic_store(&sw_armed, true);
        cg_status st = STEPS[s](&w);
        atomic_store(&sw_armed, false);
        sw_fail_at = 0;
        bool reached = atomic_load(&sw_failed);
        const char *msg = cg_last_error();
        bool bad = false;
        if (!reached) {
            not_reached++;
            bad = true;
        } else
            failed_in[s]++;
        if (st != CG_ERR_NOMEM) {
            wrong_status++;
            bad = true;
        } else if (msg[0] == '\0') {
            no_message++;
            bad = true;
        }
        blob after = snapshot(&w);
        bool same = blob_eq(&before, &after);
        if (!same) {
            changed++;
            bad = true;
        }
        /* still valid: retry the step, run the rest, reach the clean end */
        cg_status st2 = CG_OK;
        int bad_step = -1;
        if (st != CG_OK) {
            for (int i = s; i < S_COUNT && st2 == CG_OK; i++)
                if ((st2 = STEPS[i](&w)) != CG_OK)
                    bad_step = i;
        } else {
            for (int i = s + 1; i < S_COUNT && st2 == CG_OK; i++)
                if ((st2 = STEPS[i](&w)) != CG_OK)
                    bad_step = i;
        }
        bool valid = false;
        if (st2 == CG_OK) {
            blob end = snapshot(&w);
            valid = blob_eq(&end, &final);
            free(end.p);
        }
        if (!valid) {
            invalid++;
            bad = true;
        }
        world_free(&w);
        long live = atomic_load(&sw_live);
        if (live != 0) {
            leaks++;
            bad = true;
        }
        if (bad && problems++ < 20)
            fprintf(stderr,
                    "sweep: allocation %ld (%s #%ld): status %s (%s)%s%s, "
                    "%s, %s, %ld blocks leaked\n",
                    n, STEP_NAMES[s], k, cg_status_name(st), msg,
                    reached ? "" : ", failure never reached",
                    same ? "" : ", objects changed",
                    st2 == CG_OK ? "retry ok" : "retry failed",
                    valid ? "end state equal"
                          : (bad_step >= 0 ? STEP_NAMES[bad_step]
                                           : "end state differs"),
                    live);
        free(before.p);
        free(after.p);
    }
    free(final.p);
    tu_ok(cg_set_allocator(NULL));
    remove_temp_dir();

    long swept = 0;
    for (int s = 0; s < S_COUNT; s++)
        swept += failed_in[s];
    printf("sweep: %ld allocations failed across %d steps:", swept, S_COUNT);
    for (int s = 0; s < S_COUNT; s++)
        printf("%s %s %ld", s ? "," : "", STEP_NAMES[s], failed_in[s]);
    printf("; 0 crashes, %ld leaks, %ld changed objects, %ld invalid after "
           "failure, %ld wrong statuses, %ld without message\n",
           leaks, changed, invalid, wrong_status + not_reached, no_message);
    fflush(stdout);

    ck_assert_int_eq(swept, total);
    ck_assert_int_gt(total, 100);
    for (int s = 0; s < S_COUNT; s++) /* CosineAnnealingLR.step: none */
        ck_assert_msg(per_step[s] > 0 || s == S_SCHED_STEP,
                      "step %s allocates nothing", STEP_NAMES[s]);
    ck_assert_int_eq(not_reached, 0);
    ck_assert_int_eq(wrong_status, 0);
    ck_assert_int_eq(no_message, 0);
    ck_assert_int_eq(changed, 0);
    ck_assert_int_eq(invalid, 0);
    ck_assert_int_eq(leaks, 0);
}
END_TEST

Suite *sweep_suite(void)
{
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("full_scenario");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_sweep_full_scenario);
    suite_add_tcase(s, tc);
    return s;
}
