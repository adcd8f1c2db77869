/* test_train.c -- training end to end: optimizers driving a real 3-D model
 * against PyTorch 1.13, and the two training examples run as programs.
 *
 * TCases:
 *   trajectory  tests/data/optim/model/cases.tsv (gen_model_traj.py): 20
 *               steps of every optimizer, with and without each option, on
 *               Sequential(Conv3d, ReLU, ConvTranspose3d) built from
 *               manual_seed with an MSELoss, in float32 and float64: the
 *               initial parameters bitwise PyTorch's, every step's loss
 *               (float32 within 1e-5 relative) and the final parameters
 *               (float64 within 1e-10)
 *   upsampler   examples/train_upsampler, run as a program: its default
 *               setting (see CG_SANITIZED) -- the loss falls at least 10x,
 *               the lr follows the cosine, loss.svg (an <svg> root, one
 *               polyline point per epoch), slices.pgm (P5 header, exact
 *               size, the prediction nearer the target than the noisy
 *               input) and model.safetensors are written; stopped after 3
 *               of 6 epochs and resumed from the saved model + optimizer
 *               state, every output file bitwise the uninterrupted run's;
 *               the progress line redrawn in place on a pseudo-terminal
 *               and plain lines when piped; bad arguments and a
 *               mismatched checkpoint refused
 *   mlp         examples/mlp_classifier: > 95% accuracy on the training
 *               and test spirals, the loss falling 10x
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, ptsname */
#include "fixture.h"
#include "cgrad_optim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Sanitized builds run the examples several times slower: there the
 * upsampler's loss test runs a smaller real setting (the default's
 * schedule on 16^3 volumes, 16 channels, 64 samples) instead of the
 * default. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CG_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
    __has_feature(memory_sanitizer)
#define CG_SANITIZED 1
#endif
#endif

#define STEPS 20
/* The optimizers' updates are bitwise PyTorch's (test_optim.c), but the
 * convolutions' sums run in another order than PyTorch's kernels, so
 * every step's gradient differs in its last bits and 20 steps carry that
 * along. Measured (gen_model_traj.py's cases): float32 losses up to 1.1e-6
 * relative and parameters 1.2e-6 apart; float64 losses 1.4e-14 relative,
 * parameters 1e-14 apart. The bounds are 1e-5 (float32 losses)
 * and 1e-10 (float64 parameters); the other two are ours, with margin. */
#define TOL_LOSS_F32 1e-5   /* relative */
#define TOL_LOSS_F64 1e-12  /* relative */
#define TOL_PARAM_F64 1e-10 /* times max(1, max |expected|) */
#define TOL_PARAM_F32 1e-5  /* times max(1, max |expected|) */

/* ======================================================================
 * trajectory: the optimizers on Conv3d -> ReLU -> ConvTranspose3d
 * ====================================================================== */

static const char *const PARAM_NAMES[4] = {"0.weight", "0.bias", "2.weight",
                                           "2.bias"};

/* nn.Sequential(nn.Conv3d(2, 4, 3, stride=2, padding=1, dtype=dt),
 *               nn.ReLU(),
 *               nn.ConvTranspose3d(4, 2, 4, stride=2, padding=1, dtype=dt))
 * right after torch.manual_seed(seed). */
static cg_module *traj_model(cg_dtype dt, uint64_t seed)
{
    cg_manual_seed(seed);
    cg_conv3d_opts co = cg_conv3d_options(2, 4, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    co.dtype = dt;
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(4, 2, CG_INT3(4));
    to.stride = CG_INT3(2);
    to.padding = CG_INT3(1);
    to.dtype = dt;
    cg_module *seq = NULL, *conv = NULL, *relu = NULL, *convt = NULL;
    tu_ok(cg_sequential_new(&seq));
    tu_ok(cg_conv3d_new(&co, &conv));
    tu_ok(cg_relu_new(&relu));
    tu_ok(cg_conv_transpose3d_new(&to, &convt));
    tu_ok(cg_sequential_append(seq, conv));
    tu_ok(cg_sequential_append(seq, relu));
    tu_ok(cg_sequential_append(seq, convt));
    cg_module_free(conv);
    cg_module_free(relu);
    cg_module_free(convt);
    return seq;
}

/* All parameters' values, named_parameters() order, as doubles. */
static double *param_values(const cg_module *m, int64_t *n)
{
    int np = cg_module_num_parameters(m);
    ck_assert_int_eq(np, 4);
    int64_t total = 0;
    for (int i = 0; i < np; i++) {
        const char *name = NULL;
        cg_tensor *p = NULL;
        tu_ok(cg_module_named_parameter(m, i, &name, &p));
        ck_assert_str_eq(name, PARAM_NAMES[i]);
        total += cg_tensor_numel(p);
    }
    double *v = malloc((size_t)total * sizeof *v);
    ck_assert_ptr_nonnull(v);
    int64_t at = 0;
    for (int i = 0; i < np; i++) {
        cg_tensor *p = NULL;
        tu_ok(cg_module_named_parameter(m, i, NULL, &p));
        tu_ok(cg_tensor_to_doubles(p, v + at, total - at));
        at += cg_tensor_numel(p);
    }
    *n = total;
    return v;
}

/* tests/data/<rel> as doubles. */
static double *npy_values(const char *rel, int64_t *n)
{
    cg_tensor *t = tu_load(rel);
    *n = cg_tensor_numel(t);
    double *v = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tu_ok(cg_tensor_to_doubles(t, v, *n));
    cg_tensor_release(t);
    return v;
}

static cg_dtype dtype_of(const char *s)
{
    if (strcmp(s, "float32") == 0)
        return CG_FLOAT32;
    ck_assert_str_eq(s, "float64");
    return CG_FLOAT64;
}

typedef union any_options {
    cg_optimizer_kind kind;
    cg_sgd_options sgd;
    cg_adam_options adam;
    cg_rmsprop_options rmsprop;
    cg_adagrad_options adagrad;
} any_options;

/* torch.optim.<name>(params, **options) from the table's "k=v,..." list. */
static cg_optimizer *make_optimizer(const char *name, const char *list,
                                    cg_tensor *const *params, int np)
{
    char b[64];
    const char *v;
    any_options o;
#define D(key, field)                                                          \
    if ((v = tu_opt_value(list, key, b, sizeof b)))                            \
    field = strtod(v, NULL)
#define B(key, field)                                                          \
    if ((v = tu_opt_value(list, key, b, sizeof b)))                            \
    field = strcmp(v, "1") == 0
    cg_optimizer *opt = NULL;
    if (strcmp(name, "SGD") == 0) {
        o.sgd = cg_sgd_defaults();
        D("lr", o.sgd.lr);
        D("momentum", o.sgd.momentum);
        D("dampening", o.sgd.dampening);
        D("weight_decay", o.sgd.weight_decay);
        B("nesterov", o.sgd.nesterov);
        B("maximize", o.sgd.maximize);
        tu_ok(cg_sgd_new(params, np, &o.sgd, &opt));
    } else if (strcmp(name, "Adam") == 0 || strcmp(name, "AdamW") == 0) {
        bool w = strcmp(name, "AdamW") == 0;
        o.adam = w ? cg_adamw_defaults() : cg_adam_defaults();
        D("lr", o.adam.lr);
        D("betas0", o.adam.betas[0]);
        D("betas1", o.adam.betas[1]);
        D("eps", o.adam.eps);
        D("weight_decay", o.adam.weight_decay);
        B("amsgrad", o.adam.amsgrad);
        B("maximize", o.adam.maximize);
        if (w)
            tu_ok(cg_adamw_new(params, np, &o.adam, &opt));
        else
            tu_ok(cg_adam_new(params, np, &o.adam, &opt));
    } else if (strcmp(name, "RMSprop") == 0) {
        o.rmsprop = cg_rmsprop_defaults();
        D("lr", o.rmsprop.lr);
        D("alpha", o.rmsprop.alpha);
        D("eps", o.rmsprop.eps);
        D("weight_decay", o.rmsprop.weight_decay);
        D("momentum", o.rmsprop.momentum);
        B("centered", o.rmsprop.centered);
        B("maximize", o.rmsprop.maximize);
        tu_ok(cg_rmsprop_new(params, np, &o.rmsprop, &opt));
    } else {
        ck_assert_str_eq(name, "Adagrad");
        o.adagrad = cg_adagrad_defaults();
        D("lr", o.adagrad.lr);
        D("lr_decay", o.adagrad.lr_decay);
        D("weight_decay", o.adagrad.weight_decay);
        D("initial_accumulator_value", o.adagrad.initial_accumulator_value);
        D("eps", o.adagrad.eps);
        B("maximize", o.adagrad.maximize);
        tu_ok(cg_adagrad_new(params, np, &o.adagrad, &opt));
    }
#undef D
#undef B
    ck_assert_str_eq(cg_optimizer_kind_name(cg_optimizer_kind_of(opt)), name);
    return opt;
}

static tu_table traj_cases;
static bool traj_loaded;

static const tu_table *traj_table(void)
{
    if (!traj_loaded) {
        traj_cases = tu_table_load("optim/model/cases.tsv");
        traj_loaded = true;
    }
    return &traj_cases;
}

/* The number of case rows, counted with plain stdio (Check's asserts may
 * not run while the suite is built); 1 when the table cannot be read, so
 * that one test runs and fails reading it. */
static int traj_rows(void)
{
    FILE *f = fopen(tu_data_path("optim/model/cases.tsv"), "r");
    if (!f)
        return 1;
    int lines = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        lines += c == '\n';
        last = c;
    }
    fclose(f);
    lines += last != '\n';
    return lines > 1 ? lines - 1 : 1;
}

START_TEST(test_trajectory)
{
    const tu_table *t = traj_table();
    ck_assert_int_lt(_i, t->nrows);
    const char *name = tu_table_cell(t, _i, "name");
    cg_dtype dt = dtype_of(tu_table_cell(t, _i, "dtype"));
    const char *dtn = cg_dtype_name(dt);
    uint64_t seed = strtoull(tu_table_cell(t, _i, "seed"), NULL, 10);
    char rel[256];

    /* The model from manual_seed: PyTorch's initial parameters, bitwise. */
    cg_module *model = traj_model(dt, seed);
    int64_t n = 0, m = 0;
    double *got = param_values(model, &n);
    snprintf(rel, sizeof rel, "optim/model/init_%s.npy", dtn);
    double *ref = npy_values(rel, &m);
    ck_assert_int_eq(n, m);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&got[i], &ref[i], sizeof(double)) == 0,
                      "%s: initial parameter %lld is %.17g, PyTorch's %.17g",
                      name, (long long)i, got[i], ref[i]);
    free(got);
    free(ref);

    /* x and target, stored (drawn after the model in the generator). */
    snprintf(rel, sizeof rel, "optim/model/data_%s.npy", dtn);
    cg_tensor *data = tu_load(rel);
    ck_assert_int_eq(cg_tensor_numel(data), 2 * 864);
    const int64_t shape[5] = {2, 2, 6, 6, 6};
    cg_tensor *xs = NULL, *ts = NULL, *x = NULL, *target = NULL;
    tu_ok(cg_tensor_narrow(data, 0, 0, 864, &xs));
    tu_ok(cg_tensor_narrow(data, 0, 864, 864, &ts));
    tu_ok(cg_tensor_view(xs, shape, 5, &x));
    tu_ok(cg_tensor_view(ts, shape, 5, &target));

    cg_tensor *params[4];
    for (int i = 0; i < 4; i++)
        tu_ok(cg_module_named_parameter(model, i, NULL, &params[i]));
    cg_optimizer *opt =
        make_optimizer(tu_table_cell(t, _i, "optimizer"),
                       tu_table_cell(t, _i, "options"), params, 4);
    const char *extra = tu_table_cell(t, _i, "extra");
    char b[64];
    cg_lr_scheduler *sched = NULL;
    if (tu_opt_value(extra, "cosine", b, sizeof b)) {
        cg_cosine_annealing_lr_options so =
            cg_cosine_annealing_lr_defaults(strtoll(b, NULL, 10));
        tu_ok(cg_cosine_annealing_lr_new(opt, &so, &sched));
    }
    double clip =
        tu_opt_value(extra, "clip", b, sizeof b) ? strtod(b, NULL) : 0;
    cg_module *mse = NULL;
    tu_ok(cg_mse_loss_new(NULL, &mse));

    double losses[STEPS];
    for (int s = 0; s < STEPS; s++) {
        cg_tensor *y = NULL, *loss = NULL;
        tu_ok(cg_optimizer_zero_grad(opt, false));
        tu_ok(cg_module_forward(model, x, &y));
        tu_ok(cg_loss_forward(mse, y, target, &loss));
        ck_assert_int_eq(cg_tensor_dtype(loss), dt);
        tu_ok(cg_tensor_item(loss, &losses[s], NULL));
        tu_ok(cg_tensor_backward(loss, NULL, false));
        if (clip > 0)
            tu_ok(cg_clip_grad_norm_(params, 4, clip, 2.0, false, NULL));
        tu_ok(cg_optimizer_step(opt));
        if (sched)
            tu_ok(cg_lr_scheduler_step(sched));
        cg_tensor_release(loss);
        cg_tensor_release(y);
    }

    snprintf(rel, sizeof rel, "optim/model/%s_loss.npy", name);
    ref = npy_values(rel, &m);
    ck_assert_int_eq(m, STEPS);
    double tol = dt == CG_FLOAT32 ? TOL_LOSS_F32 : TOL_LOSS_F64;
    for (int s = 0; s < STEPS; s++)
        ck_assert_msg(fabs(losses[s] - ref[s]) <= tol * fabs(ref[s]),
                      "%s: loss of step %d is %.17g, PyTorch's %.17g "
                      "(relative difference %.3g > %.3g)",
                      name, s, losses[s], ref[s],
                      fabs(losses[s] - ref[s]) / fabs(ref[s]), tol);
    free(ref);

    got = param_values(model, &n);
    snprintf(rel, sizeof rel, "optim/model/%s_params.npy", name);
    ref = npy_values(rel, &m);
    ck_assert_int_eq(n, m);
    double scale = 1.0;
    for (int64_t i = 0; i < m; i++)
        scale = fmax(scale, fabs(ref[i]));
    tol = (dt == CG_FLOAT32 ? TOL_PARAM_F32 : TOL_PARAM_F64) * scale;
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - ref[i]) <= tol,
                      "%s: final parameter %lld is %.17g, PyTorch's %.17g "
                      "(difference %.3g > %.3g)",
                      name, (long long)i, got[i], ref[i], fabs(got[i] - ref[i]),
                      tol);
    free(got);
    free(ref);

    cg_module_free(mse);
    cg_lr_scheduler_free(sched);
    cg_optimizer_free(opt);
    cg_tensor_release(x);
    cg_tensor_release(target);
    cg_tensor_release(xs);
    cg_tensor_release(ts);
    cg_tensor_release(data);
    cg_module_free(model);
}
END_TEST

/* ======================================================================
 * The examples, run as programs
 * ====================================================================== */

#define UPSAMPLER CG_BUILD_DIR "/examples/train_upsampler"
#define MLP CG_BUILD_DIR "/examples/mlp_classifier"

/* A whole file (binary) into a malloc'd buffer with a NUL after it; NULL
 * when it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *s = malloc(cap + 1);
    ck_assert_ptr_nonnull(s);
    while ((r = fread(s + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            s = realloc(s, cap + 1);
            ck_assert_ptr_nonnull(s);
        }
    }
    fclose(f);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

/* A fresh directory under the build tree for one test's files. */
static void make_tmpdir(char *buf, size_t size)
{
    snprintf(buf, size, "%s/test_train_XXXXXX", CG_BUILD_DIR);
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp %s: %s", buf, strerror(errno));
}

/* Removes dir and the files the examples write into it. */
static void remove_tmpdir(const char *dir)
{
    static const char *const files[] = {"loss.svg",
                                        "slices.pgm",
                                        "loss.tsv",
                                        "model.safetensors",
                                        "optimizer.safetensors",
                                        "train_state.safetensors"};
    char p[2048];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        remove(p);
    }
    rmdir(dir);
}

/* Runs a shell command line with stdout captured (stderr passes through)
 * and returns the output; *code gets the exit status (-1 when it did not
 * exit normally). */
static char *run(const char *cmd, int *code)
{
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen %s: %s", cmd, strerror(errno));
    size_t cap = 1 << 14, n = 0, r;
    char *s = malloc(cap + 1);
    ck_assert_ptr_nonnull(s);
    while ((r = fread(s + n, 1, cap - n, p)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            s = realloc(s, cap + 1);
            ck_assert_ptr_nonnull(s);
        }
    }
    s[n] = '\0';
    int status = pclose(p);
    *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return s;
}

/* Runs cmd and requires exit status 0. */
static char *run_ok(const char *cmd)
{
    int code = 0;
    char *out = run(cmd, &code);
    ck_assert_msg(code == 0, "`%s` exited with %d; its output:\n%s", cmd, code,
                  out);
    return out;
}

/* The number after `key` on the first line starting with `key`. */
static double number_after(const char *out, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = out; p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, key, kl) == 0)
            return strtod(p + kl, NULL);
    ck_abort_msg("no line starting with '%s' in:\n%s", key, out);
    return 0;
}

static int count_of(const char *s, const char *needle)
{
    int n = 0;
    size_t l = strlen(needle);
    for (const char *p = strstr(s, needle); p; p = strstr(p + l, needle))
        n++;
    return n;
}

/* The epoch lines "epoch k/E  loss L  lr R  ..." of a piped run, which
 * must count from `from` to `to` (0: to E) in order: their losses into
 * loss[k-1] and lrs into lr[k-1] (cap entries). Returns E. */
static int epoch_lines(const char *out, int from, int to, double *loss,
                       double *lr, int cap)
{
    int next = from, total = -1;
    for (const char *p = out; p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, "epoch ", 6) != 0)
            continue;
        int k = 0, e = 0;
        double l = 0, r = 0;
        ck_assert_msg(
            sscanf(p, "epoch %d/%d loss %lf lr %lf", &k, &e, &l, &r) == 4,
            "bad progress line: %.80s", p);
        ck_assert_int_eq(k, next);
        ck_assert_int_le(k, cap);
        ck_assert(total < 0 || total == e);
        total = e;
        loss[k - 1] = l;
        lr[k - 1] = r;
        next++;
    }
    ck_assert_msg(total > 0 && next - 1 == (to ? to : total),
                  "epoch lines %d.. end at %d, expected %d", from, next - 1,
                  to ? to : total);
    return total;
}

/* loss.svg: an XML declaration, an <svg> root with width, height and
 * viewBox, closed at the end; one <polyline> whose points (one per
 * epoch) lie inside the view box, left to right, ending lower on the
 * page's log axis (larger y) than they start when the loss fell. */
static void check_svg(const char *path, int epochs)
{
    size_t len = 0;
    char *s = slurp(path, &len);
    ck_assert_msg(s != NULL, "%s was not written", path);
    ck_assert_msg(strncmp(s, "<?xml version=\"1.0\"", 19) == 0,
                  "%s: no XML declaration", path);
    const char *root = strstr(s, "<svg ");
    ck_assert_ptr_nonnull(root);
    double w = 0, h = 0, vx = -1, vy = -1, vw = 0, vh = 0;
    ck_assert(strstr(root, "xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    ck_assert_int_eq(sscanf(strstr(root, "width=\""), "width=\"%lf", &w), 1);
    ck_assert_int_eq(sscanf(strstr(root, "height=\""), "height=\"%lf", &h), 1);
    ck_assert_int_eq(sscanf(strstr(root, "viewBox=\""),
                            "viewBox=\"%lf %lf %lf %lf", &vx, &vy, &vw, &vh),
                     4);
    ck_assert(w >= 200 && h >= 100 && vx == 0 && vy == 0 && vw == w && vh == h);
    /* closed at the end, and every tag closed: as many '<' as '>' */
    const char *end = s + len;
    while (end > s && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    ck_assert_msg(end - s > 6 && strncmp(end - 6, "</svg>", 6) == 0,
                  "%s does not end with </svg>", path);
    ck_assert_int_eq(count_of(s, "<"), count_of(s, ">"));
    ck_assert_int_eq(count_of(s, "<svg"), 1);
    ck_assert_int_eq(count_of(s, "<polyline"), 1);
    const char *pts = strstr(strstr(s, "<polyline"), "points=\"");
    ck_assert_ptr_nonnull(pts);
    pts += 8;
    int n = 0;
    double x0 = 0, y0 = 0, px = -1, x = 0, y = 0;
    while (*pts != '"') {
        int used = 0;
        ck_assert_msg(sscanf(pts, "%lf,%lf%n", &x, &y, &used) == 2,
                      "bad point %.20s", pts);
        ck_assert(x >= 0 && x <= w && y >= 0 && y <= h);
        ck_assert_msg(x > px, "points not left to right");
        if (n == 0) {
            x0 = x;
            y0 = y;
        }
        px = x;
        n++;
        pts += used;
        while (*pts == ' ')
            pts++;
    }
    ck_assert_int_eq(n, epochs);
    if (epochs > 1)
        ck_assert_msg(y > y0 && x > x0, "the curve does not go down");
    free(s);
}

/* slices.pgm: "P5\n<w> <h>\n255\n" and exactly w * h bytes; three S*zoom
 * square panels 4 pixels apart (zoom = ceil(128 / S)). Returns the
 * panels' mean |input - target| and |prediction - target| (0..255). */
static void check_pgm(const char *path, int S, double *in_err, double *pred_err)
{
    size_t len = 0;
    char *s = slurp(path, &len);
    ck_assert_msg(s != NULL, "%s was not written", path);
    int w = 0, h = 0, maxv = 0, hdr = 0;
    ck_assert_int_eq(sscanf(s, "P5\n%d %d\n%d%n", &w, &h, &maxv, &hdr), 3);
    ck_assert_int_eq(s[hdr], '\n');
    hdr++;
    int zoom = S >= 128 ? 1 : (128 + S - 1) / S, p = S * zoom;
    ck_assert_int_eq(maxv, 255);
    ck_assert_int_eq(h, p);
    ck_assert_int_eq(w, 3 * p + 8);
    ck_assert_uint_eq(len, (size_t)hdr + (size_t)w * (size_t)h);
    const unsigned char *px = (const unsigned char *)s + hdr;
    double ein = 0, epred = 0;
    int lit = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < p; x++) {
            int in = px[y * w + x], pr = px[y * w + p + 4 + x],
                tg = px[y * w + 2 * (p + 4) + x];
            ein += abs(in - tg);
            epred += abs(pr - tg);
            lit += tg > 0;
            ck_assert_int_eq(px[y * w + p + (x % 4)], 255); /* the gaps */
        }
    ck_assert_msg(lit > 0, "the target slice is empty");
    *in_err = ein / (p * p);
    *pred_err = epred / (p * p);
    free(s);
}

static bool same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    ck_assert_msg(x && y, "missing %s or %s", a, b);
    bool same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* The default setting, as the README's quick start runs it (a smaller
 * one in sanitized builds, see CG_SANITIZED): the loss falls at least
 * 10x, from the untrained model's and from epoch 1's; the learning rate
 * follows the cosine; the pictures and the weights are written and
 * sensible. */
START_TEST(test_upsampler_default)
{
    char dir[1024], cmd[4096], p[2048];
    make_tmpdir(dir, sizeof dir);
#ifdef CG_SANITIZED
    snprintf(cmd, sizeof cmd,
             "%s --size 16 --channels 16 --samples 64 --out %s", UPSAMPLER,
             dir);
#else
    snprintf(cmd, sizeof cmd, "%s --out %s", UPSAMPLER, dir);
#endif
    char *out = run_ok(cmd);
    ck_assert_msg(strchr(out, '\r') == NULL, "\\r in piped output");
    int S = (int)number_after(out, "train_upsampler: denoising ");
    int C = 0;
    ck_assert_int_eq(
        sscanf(strstr(out, "model: Conv3d(1, "), "model: Conv3d(1, %d", &C), 1);
    double loss[1000], lr[1000];
    int E = epoch_lines(out, 1, 0, loss, lr, 1000);
    double initial = number_after(out, "initial loss ");
    double last = loss[E - 1];
    ck_assert_msg(last * 10 <= initial,
                  "the loss fell from %g to %g only (%.2fx)", initial, last,
                  initial / last);
    ck_assert_msg(last * 10 <= loss[0],
                  "the loss fell from %g in epoch 1 to %g only (%.2fx)",
                  loss[0], last, loss[0] / last);
    /* the cosine schedule: lr(k) = lr0 (1 + cos(pi (k-1) / E)) / 2 */
    for (int k = 0; k < E; k++)
        ck_assert_msg(fabs(lr[k] - lr[0] * (1 + cos(M_PI * k / E)) / 2) <=
                          1e-3 * lr[k],
                      "lr of epoch %d is %g", k + 1, lr[k]);

    /* loss.tsv holds the same losses, to the last digit */
    snprintf(p, sizeof p, "%s/loss.tsv", dir);
    char *tsv = slurp(p, NULL);
    ck_assert_ptr_nonnull(tsv);
    ck_assert(strncmp(tsv, "epoch\tloss\n", 11) == 0);
    const char *q = tsv + 11;
    for (int k = 0; k < E; k++) {
        int e = 0, used = 0;
        double v = 0;
        ck_assert_int_eq(sscanf(q, "%d\t%lf\n%n", &e, &v, &used), 2);
        ck_assert_int_eq(e, k + 1);
        ck_assert_msg(fabs(v - loss[k]) <= 5e-6 * v, "loss.tsv %g vs %g", v,
                      loss[k]);
        q += used;
    }
    ck_assert_int_eq(*q, '\0');
    free(tsv);

    snprintf(p, sizeof p, "%s/loss.svg", dir);
    check_svg(p, E);
    double ein = 0, epred = 0;
    snprintf(p, sizeof p, "%s/slices.pgm", dir);
    check_pgm(p, S, &ein, &epred);
    ck_assert_msg(epred < 0.5 * ein,
                  "the prediction (mean error %g) is not much closer to the "
                  "target than the noisy input (%g)",
                  epred, ein);

    /* model.safetensors: the Sequential's state dict */
    cg_state_dict *sd = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    tu_ok(cg_safetensors_load(p, &sd));
    ck_assert_int_eq(cg_state_dict_size(sd), 4);
    const int64_t shapes[4][5] = {{C, 1, 3, 3, 3}, {C}, {C, 1, 4, 4, 4}, {1}};
    const int ndims[4] = {5, 1, 5, 1};
    for (int i = 0; i < 4; i++) {
        int at = cg_state_dict_find(sd, PARAM_NAMES[i]);
        ck_assert_msg(at >= 0, "no %s", PARAM_NAMES[i]);
        cg_tensor *t = NULL;
        tu_ok(cg_state_dict_entry(sd, at, NULL, NULL, &t, NULL));
        ck_assert_int_eq(cg_tensor_dtype(t), CG_FLOAT32);
        tu_assert_shape(t, shapes[i], ndims[i]);
    }
    cg_state_dict_free(sd);
    free(out);
    remove_tmpdir(dir);
}
END_TEST

/* Cuts the timing ("  1234 samples/s  ETA 0:01") off the progress lines. */
static void strip_timing(char *out)
{
    for (char *p = strstr(out, " samples/s"); p; p = strstr(p, " samples/s")) {
        char *b = p;
        while (b > out && b[-1] != ' ')
            b--; /* the number */
        while (b > out && b[-1] == ' ')
            b--;
        char *e = strchr(p, '\n');
        if (!e)
            e = p + strlen(p);
        memmove(b, e, strlen(e) + 1);
        p = b;
    }
}

/* Stopped after epoch 3 of 6 and resumed: bitwise the uninterrupted run,
 * written to another directory and in place. */
START_TEST(test_upsampler_resume)
{
    char a[1024], b[1024], c[1024], cmd[4096], pa[2048], pb[2048];
    make_tmpdir(a, sizeof a);
    make_tmpdir(b, sizeof b);
    make_tmpdir(c, sizeof c);
    snprintf(cmd, sizeof cmd, "%s --short --out %s", UPSAMPLER, a);
    char *full = run_ok(cmd);
    snprintf(cmd, sizeof cmd, "%s --short --stop-after 3 --out %s", UPSAMPLER,
             b);
    char *first = run_ok(cmd);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    ck_assert_msg(!same_file(pa, pb), "3 epochs gave the weights of 6");
    cg_state_dict *sd = NULL;
    double done = 0;
    snprintf(pb, sizeof pb, "%s/train_state.safetensors", b);
    tu_ok(cg_safetensors_load(pb, &sd));
    int at = cg_state_dict_find(sd, "epochs_done");
    ck_assert_int_ge(at, 0);
    tu_ok(cg_state_dict_entry(sd, at, NULL, NULL, NULL, &done));
    ck_assert(done == 3);
    cg_state_dict_free(sd);

    snprintf(cmd, sizeof cmd, "%s --short --resume %s --out %s", UPSAMPLER, b,
             c);
    char *resumed = run_ok(cmd);
    ck_assert(strstr(resumed, "resumed from ") != NULL);
    double l1[16], r1[16], l2[16], r2[16];
    ck_assert_int_eq(epoch_lines(full, 1, 0, l1, r1, 16), 6);
    ck_assert_int_eq(epoch_lines(first, 1, 3, l2, r2, 16), 6);
    ck_assert_int_eq(epoch_lines(resumed, 4, 0, l2, r2, 16), 6);
    for (int k = 0; k < 6; k++)
        ck_assert(l1[k] == l2[k] && r1[k] == r2[k]);
    strip_timing(full);
    strip_timing(resumed);
    /* epochs 4 to 6, the final and held-out losses: the same text */
    char *cont = strstr(resumed, "epoch  4/6  loss ");
    ck_assert_ptr_nonnull(cont);
    char *wrote = strstr(cont, "\nwrote ");
    ck_assert_ptr_nonnull(wrote);
    wrote[1] = '\0';
    ck_assert_msg(strstr(full, cont) != NULL,
                  "the resumed run's lines differ:\n%s\nvs\n%s", resumed, full);

    static const char *const files[] = {"model.safetensors",
                                        "optimizer.safetensors",
                                        "train_state.safetensors",
                                        "loss.tsv",
                                        "loss.svg",
                                        "slices.pgm"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", c, files[i]);
        ck_assert_msg(same_file(pa, pb), "resumed %s differs", files[i]);
    }
    /* resuming in place, into the checkpoint's own directory */
    snprintf(cmd, sizeof cmd, "%s --short --resume %s --out %s", UPSAMPLER, b,
             b);
    free(run_ok(cmd));
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        ck_assert_msg(same_file(pa, pb), "resumed in place: %s differs",
                      files[i]);
    }
    /* another setting cannot resume this checkpoint */
    int code = 0;
    snprintf(cmd, sizeof cmd, "%s --short --size 10 --resume %s --out %s 2>&1",
             UPSAMPLER, a, c);
    char *err = run(cmd, &code);
    ck_assert_int_eq(code, 1);
    ck_assert_msg(strstr(err, "was made with size 8, this run has 10") != NULL,
                  "%s", err);
    free(err);
    snprintf(cmd, sizeof cmd, "%s --epochs 0 2>&1", UPSAMPLER);
    err = run(cmd, &code);
    ck_assert_int_eq(code, 2);
    ck_assert(strstr(err, "--epochs expects an integer in [1, 100000], got "
                          "'0'") != NULL);
    free(err);
    free(full);
    free(first);
    free(resumed);
    remove_tmpdir(a);
    remove_tmpdir(b);
    remove_tmpdir(c);
}
END_TEST

/* Runs argv[0] with stdout on a pseudo-terminal (output post-processing
 * off, so "\n" stays "\n") and returns what it wrote. */
static char *run_on_tty(char *const argv[])
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_msg(m >= 0, "posix_openpt: %s", strerror(errno));
    ck_assert_int_eq(grantpt(m), 0);
    ck_assert_int_eq(unlockpt(m), 0);
    const char *name = ptsname(m);
    ck_assert_ptr_nonnull(name);
    int sl = open(name, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(sl, 0);
    struct termios tio;
    ck_assert_int_eq(tcgetattr(sl, &tio), 0);
    tio.c_oflag &= ~(tcflag_t)OPOST;
    ck_assert_int_eq(tcsetattr(sl, TCSANOW, &tio), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(m);
        dup2(sl, STDOUT_FILENO);
        close(sl);
        execv(argv[0], argv);
        _exit(127);
    }
    close(sl);
    size_t cap = 1 << 14, n = 0;
    char *s = malloc(cap + 1);
    ck_assert_ptr_nonnull(s);
    for (;;) {
        ssize_t r = read(m, s + n, cap - n);
        if (r <= 0) { /* EIO once the child has closed its side */
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            s = realloc(s, cap + 1);
            ck_assert_ptr_nonnull(s);
        }
    }
    s[n] = '\0';
    close(m);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s failed on a terminal:\n%s", argv[0], s);
    return s;
}

/* On a terminal the progress line is redrawn in place; piped (the other
 * tests) it is one plain line per epoch. */
START_TEST(test_upsampler_tty)
{
    char dir[1024];
    make_tmpdir(dir, sizeof dir);
    char *argv[] = {UPSAMPLER, "--short", "--out", dir, NULL};
    char *out = run_on_tty(argv);
    ck_assert_int_eq(count_of(out, "\repoch "), 6);
    ck_assert_int_eq(count_of(out, "\nepoch "), 0);
    ck_assert_int_eq(count_of(out, "\033[K"), 6);
    const char *last = NULL;
    for (const char *p = strstr(out, "\repoch "); p;
         p = strstr(p + 1, "\repoch "))
        last = p;
    ck_assert_ptr_nonnull(last);
    ck_assert(strncmp(last, "\repoch  6/6  loss ", 18) == 0);
    const char *nl = strchr(last, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_msg(strncmp(nl + 1, "final loss ", 11) == 0,
                  "the last redraw is not ended by a newline");
    /* every earlier redraw is followed directly by the next one */
    for (const char *p = strstr(out, "\repoch "); p && p < last;
         p = strstr(p + 1, "\repoch "))
        ck_assert_ptr_eq(strstr(p + 1, "\repoch "),
                         (const char *)memchr(p + 1, '\r', strlen(p + 1)));
    free(out);
    remove_tmpdir(dir);
}
END_TEST

/* The spiral classifier: > 95% accuracy on its training and test sets,
 * the loss falling 10x. */
START_TEST(test_mlp)
{
    char *out = run_ok(MLP);
    ck_assert_msg(strchr(out, '\r') == NULL, "\\r in piped output");
    double loss[1000], acc[1000];
    int E = 0;
    for (const char *p = out; p && *p;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        int k = 0, e = 0;
        if (sscanf(p, "epoch %d/%d loss %lf accuracy %lf%%", &k, &e, &loss[E],
                   &acc[E]) == 4) {
            ck_assert_int_eq(k, E + 1);
            E++;
            ck_assert_int_lt(E, 1000);
        }
    }
    ck_assert_int_ge(E, 10);
    ck_assert_msg(loss[E - 1] * 10 <= loss[0], "loss %g -> %g", loss[0],
                  loss[E - 1]);
    double train = number_after(out, "train accuracy ");
    double test = number_after(out, "test accuracy ");
    ck_assert_msg(train > 95 && test > 95, "accuracy %g%% / %g%%", train, test);
    ck_assert(acc[E - 1] == train);
    int ok = 0, n = 0;
    ck_assert_int_eq(sscanf(strstr(out, "test accuracy "),
                            "test accuracy %*f%% (%d/%d)", &ok, &n),
                     2);
    ck_assert_int_eq(n, 600);
    ck_assert(fabs(100.0 * ok / n - test) < 0.006);
    free(out);
}
END_TEST

Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tu_suite_tcase(s, "trajectory", 60);
    tcase_add_loop_test(tc, test_trajectory, 0, traj_rows());
    tc = tu_suite_tcase(s, "upsampler", 1100);
    tcase_add_test(tc, test_upsampler_default);
    tcase_add_test(tc, test_upsampler_resume);
    tcase_add_test(tc, test_upsampler_tty);
    tc = tu_suite_tcase(s, "mlp", 300);
    tcase_add_test(tc, test_mlp);
    return s;
}
