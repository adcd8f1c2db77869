/*
 * fuzz_autograd.c -- libFuzzer target for the autograd engine and the
 * differentiable ops, with cg_gradcheck as the oracle.
 *
 * The input decides 1-3 leaves (float64, sometimes complex128; shapes of
 * rank 0..3 built around one base shape so that ops combine; values away
 * from zero and from each other) and a program of up to 12 ops on a
 * stack: unary ops on the top (neg, exp, log, sqrt, abs, pow, relu,
 * leaky_relu, sigmoid, tanh, gelu, softmax, log_softmax, sums and means,
 * scalar arithmetic, conj, real/imag/view_as_real, views: transpose,
 * permute, unsqueeze, squeeze, select, narrow, slice, expand, reshape,
 * flatten, t, contiguous, clone) and binary ops of the top with any stack
 * entry (add, sub, mul, div, matmul, mm, bmm, cat, complex, linear,
 * mse_loss, l1_loss, cross_entropy). An op that fails (shapes, dtypes) is
 * skipped, which depends only on the program, never on values.
 *
 * cg_gradcheck then compares the backward graph's Jacobian with finite
 * differences. Every evaluation also watches for places where finite
 * differences say nothing about the analytic gradient: a kink (abs, relu,
 * leaky_relu, l1_loss) or singular point (log, sqrt, pow, div) within a
 * margin of an operand, a branch cut of a complex log/sqrt/pow, values
 * beyond 1e3 or not finite. A program that met one is unsafe: its
 * gradcheck verdict is not judged. A gradcheck failure of a safe program
 * is a finding (the harness traps).
 */
#define _GNU_SOURCE
#include "cgrad_nn.h"
#include "fuzz_util.h"

#include <math.h>

/* how many programs were judged, skipped as unsafe, or failed to run */
static long judged, unsafe_runs, not_run;

static void print_counts(void)
{
    fprintf(stderr,
            "fuzz_autograd: %ld gradchecks judged, %ld unsafe, "
            "%ld not run\n",
            judged, unsafe_runs, not_run);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    if (getenv("FUZZ_VERBOSE"))
        atexit(print_counts);
    return 0;
}

#define MAX_OPS 12
#define MAX_STACK 8
#define MAX_RANK 5
#define MAX_OUT 12

enum {
    OP_NEG,
    OP_EXP,
    OP_LOG,
    OP_SQRT,
    OP_ABS,
    OP_POW,
    OP_RELU,
    OP_LEAKY,
    OP_SIGMOID,
    OP_TANH,
    OP_GELU,
    OP_SOFTMAX,
    OP_LOG_SOFTMAX,
    OP_SUM,
    OP_SUM_DIMS,
    OP_MEAN,
    OP_MEAN_DIMS,
    OP_ADD_S,
    OP_SUB_S,
    OP_MUL_S,
    OP_DIV_S,
    OP_RSUB_S,
    OP_CONJ,
    OP_REAL,
    OP_IMAG,
    OP_VIEW_AS_REAL,
    OP_TRANSPOSE,
    OP_PERMUTE,
    OP_UNSQUEEZE,
    OP_SQUEEZE,
    OP_SQUEEZE_DIM,
    OP_SELECT,
    OP_NARROW,
    OP_SLICE,
    OP_EXPAND,
    OP_RESHAPE,
    OP_FLATTEN,
    OP_T,
    OP_CONTIGUOUS,
    OP_CLONE,
    OP_MUL_CS,
    /* binary */
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MATMUL,
    OP_MM,
    OP_BMM,
    OP_CAT,
    OP_COMPLEX,
    OP_LINEAR,
    OP_MSE,
    OP_L1,
    OP_CROSS_ENTROPY,
    /* stack */
    OP_PUSH,
    OP_POP,
    OP_COUNT
};

static const char *const OP_NAMES[OP_COUNT] = {
    "neg",          "exp",       "log",         "sqrt",          "abs",
    "pow",          "relu",      "leaky_relu",  "sigmoid",       "tanh",
    "gelu",         "softmax",   "log_softmax", "sum",           "sum_dims",
    "mean",         "mean_dims", "add_s",       "sub_s",         "mul_s",
    "div_s",        "rsub_s",    "conj",        "real",          "imag",
    "view_as_real", "transpose", "permute",     "unsqueeze",     "squeeze",
    "squeeze_dim",  "select",    "narrow",      "slice",         "expand",
    "reshape",      "flatten",   "t",           "contiguous",    "clone",
    "mul_cs",       "add",       "sub",         "mul",           "div",
    "matmul",       "mm",        "bmm",         "cat",           "complex",
    "linear",       "mse_loss",  "l1_loss",     "cross_entropy", "push",
    "pop",
};

static const double SCALARS[] = {2.0, -1.5, 0.5, 3.0, -0.25, 1.0, 0.75};
static const double EXPONENTS[] = {2.0, 3.0, 0.5, -1.0, -2.0,
                                   1.5, 0.0, 1.0, -0.5, 4.0};
static const char *const REDUCTIONS[] = {"mean", "sum", "none"};

typedef struct op {
    uint8_t code, a, b, c;
} op;

typedef struct prog {
    int nleaves;
    int nops;
    op ops[MAX_OPS];
    bool unsafe;     /* some evaluation met a kink / singularity */
    const char *why; /* the first reason, for the report */
} prog;

/* ---- watching values ---------------------------------------------------- */

typedef struct stats {
    double minabs, maxabs; /* over |element| (complex: modulus) */
    double min_re;         /* smallest real part */
    bool cut;              /* a complex element near the negative real axis */
    bool nonfinite;
} stats;

static bool scan(const cg_tensor *t, stats *s)
{
    int64_t n = cg_tensor_numel(t);
    bool cx = cg_dtype_is_complex(cg_tensor_dtype(t));
    int64_t count = n * (cx ? 2 : 1);
    *s = (stats){INFINITY, 0.0, INFINITY, false, false};
    if (n == 0)
        return true;
    double *v = malloc((size_t)count * sizeof *v);
    if (!v || cg_tensor_to_doubles(t, v, count) != CG_OK) {
        free(v);
        return false;
    }
    for (int64_t i = 0; i < n; i++) {
        double re = cx ? v[2 * i] : v[i], im = cx ? v[2 * i + 1] : 0.0;
        double m = cx ? hypot(re, im) : fabs(re);
        if (!isfinite(re) || !isfinite(im))
            s->nonfinite = true;
        if (m < s->minabs)
            s->minabs = m;
        if (m > s->maxabs)
            s->maxabs = m;
        if (re < s->min_re)
            s->min_re = re;
        if (cx && re < 0 && fabs(im) < 1e-2 * (1.0 + m))
            s->cut = true;
    }
    free(v);
    return true;
}

static void mark(prog *p, bool cond, const char *why)
{
    if (cond && !p->unsafe) {
        p->unsafe = true;
        p->why = why;
    }
}

/* ---- the interpreter ----------------------------------------------------- */

static int64_t dim_arg(uint8_t a, int nd)
{
    /* in [-nd-1, nd]: mostly valid, sometimes one past either end */
    return (int64_t)(a % (unsigned)(2 * nd + 3)) - nd - 1;
}

static cg_status unary(prog *p, const op *o, cg_tensor *x, cg_tensor **out)
{
    int nd = cg_tensor_dim(x);
    const int64_t *sh = cg_tensor_shape(x);
    bool cx = cg_dtype_is_complex(cg_tensor_dtype(x));
    int64_t d = dim_arg(o->a, nd);
    stats s;
    switch (o->code) {
    case OP_NEG:
        return cg_neg(x, out);
    case OP_EXP:
        return cg_exp(x, out);
    case OP_LOG:
    case OP_SQRT:
        if (scan(x, &s))
            mark(p, s.minabs < 1e-2 || (!cx && s.min_re < 1e-2) || s.cut,
                 o->code == OP_LOG ? "log near 0 / branch cut"
                                   : "sqrt near 0 / branch cut");
        return o->code == OP_LOG ? cg_log(x, out) : cg_sqrt(x, out);
    case OP_ABS:
        if (scan(x, &s))
            mark(p, s.minabs < 1e-3, "abs near 0");
        return cg_abs(x, out);
    case OP_POW: {
        double e = EXPONENTS[o->a % (sizeof EXPONENTS / sizeof *EXPONENTS)];
        bool poly = e >= 0 && e == floor(e);
        if (scan(x, &s))
            mark(p,
                 !poly &&
                     (s.minabs < 5e-2 || s.cut || (!cx && s.min_re < 5e-2)),
                 "pow near 0 / branch cut");
        if (cx && e != floor(e) && scan(x, &s))
            mark(p, s.cut, "complex pow branch cut");
        return cg_pow_scalar(x, e, out);
    }
    case OP_RELU:
    case OP_LEAKY:
        if (scan(x, &s))
            mark(p, s.minabs < 1e-3, "relu kink");
        return o->code == OP_RELU
                   ? cg_relu(x, out)
                   : cg_leaky_relu(x, o->a & 1 ? 0.2 : 0.01, out);
    case OP_SIGMOID:
        return cg_sigmoid(x, out);
    case OP_TANH:
        return cg_tanh(x, out);
    case OP_GELU:
        return cg_gelu(x, o->b & 1 ? "tanh" : "none", out);
    case OP_SOFTMAX:
        return cg_softmax(x, d, out);
    case OP_LOG_SOFTMAX:
        return cg_log_softmax(x, d, out);
    case OP_SUM:
        return cg_sum(x, out);
    case OP_MEAN:
        return cg_mean(x, out);
    case OP_SUM_DIMS:
    case OP_MEAN_DIMS: {
        int64_t dims[2] = {d, dim_arg(o->b, nd)};
        int n = (int)(o->c % 3);
        return o->code == OP_SUM_DIMS ? cg_sum_dims(x, dims, n, o->c & 4, out)
                                      : cg_mean_dims(x, dims, n, o->c & 4, out);
    }
    case OP_ADD_S:
        return cg_add_scalar(x, SCALARS[o->a % 7], out);
    case OP_SUB_S:
        return cg_sub_scalar(x, SCALARS[o->a % 7], out);
    case OP_MUL_S:
        return cg_mul_scalar(x, SCALARS[o->a % 7], out);
    case OP_DIV_S:
        return cg_div_scalar(x, SCALARS[o->a % 7], out);
    case OP_RSUB_S:
        return cg_rsub_scalar(x, SCALARS[o->a % 7], out);
    case OP_MUL_CS:
        return cg_mul_complex_scalar(x, SCALARS[o->a % 7], SCALARS[o->b % 7],
                                     out);
    case OP_CONJ:
        return cg_conj(x, out);
    case OP_REAL:
        return cg_real(x, out);
    case OP_IMAG:
        return cg_imag(x, out);
    case OP_VIEW_AS_REAL:
        return cg_view_as_real(x, out);
    case OP_TRANSPOSE:
        return cg_tensor_transpose(x, d, dim_arg(o->b, nd), out);
    case OP_PERMUTE: {
        int64_t perm[CG_MAX_DIMS];
        for (int i = 0; i < nd; i++)
            perm[i] = (int64_t)((i + o->a) % nd);
        if (nd > 1 && (o->b & 1)) {
            int64_t tmp = perm[0];
            perm[0] = perm[1];
            perm[1] = tmp;
        }
        return cg_tensor_permute(x, perm, nd, out);
    }
    case OP_UNSQUEEZE:
        return cg_tensor_unsqueeze(x, d, out);
    case OP_SQUEEZE:
        return cg_tensor_squeeze(x, out);
    case OP_SQUEEZE_DIM:
        return cg_tensor_squeeze_dim(x, d, out);
    case OP_SELECT:
        return cg_tensor_select(x, d, (int64_t)(o->b % 5) - 2, out);
    case OP_NARROW:
        return cg_tensor_narrow(x, d, o->b % 3, o->c % 3, out);
    case OP_SLICE:
        return cg_tensor_slice(x, d, (int64_t)(o->b % 5) - 2,
                               o->c & 8 ? INT64_MAX : (int64_t)(o->c % 5) - 1,
                               1 + (o->c >> 4) % 3, out);
    case OP_EXPAND: {
        int64_t shape[CG_MAX_DIMS];
        int lead = o->a & 1;
        shape[0] = 2;
        for (int i = 0; i < nd; i++)
            shape[lead + i] =
                sh[i] == 1 ? 1 + (int64_t)((o->b >> i) & 1) * 2 : -1;
        return cg_tensor_expand(x, shape, nd + lead, out);
    }
    case OP_RESHAPE: {
        int64_t shape[2] = {-1, (int64_t)(o->a % 3) + 1};
        return cg_tensor_reshape(x, shape, 1 + (o->b & 1), out);
    }
    case OP_FLATTEN:
        return cg_tensor_flatten(x, d, dim_arg(o->b, nd), out);
    case OP_T:
        return cg_tensor_t(x, out);
    case OP_CONTIGUOUS:
        return cg_tensor_contiguous(x, out);
    case OP_CLONE:
        return cg_tensor_clone(x, out);
    default:
        return cg_error(CG_ERR_VALUE, "not a unary op");
    }
}

static cg_status binary(prog *p, const op *o, cg_tensor *x, cg_tensor *y,
                        cg_tensor **out)
{
    stats s;
    const char *red = REDUCTIONS[o->b % 3];
    switch (o->code) {
    case OP_ADD:
        return cg_add(x, y, out);
    case OP_SUB:
        return cg_sub(x, y, out);
    case OP_MUL:
        return cg_mul(x, y, out);
    case OP_DIV:
        if (scan(y, &s))
            mark(p, s.minabs < 5e-2, "division near 0");
        return cg_div(x, y, out);
    case OP_MATMUL:
        return cg_matmul(x, y, out);
    case OP_MM:
        return cg_mm(x, y, out);
    case OP_BMM:
        return cg_bmm(x, y, out);
    case OP_CAT: {
        cg_tensor *ts[2] = {x, y};
        return cg_cat(ts, 2, dim_arg(o->b, cg_tensor_dim(x)), out);
    }
    case OP_COMPLEX:
        return cg_complex(x, y, out);
    case OP_LINEAR:
        return cg_linear(x, y, NULL, out);
    case OP_MSE:
        return cg_mse_loss(x, y, red, out);
    case OP_L1: {
        bool prev = cg_set_grad_enabled(false);
        cg_tensor *diff = NULL;
        if (cg_sub(x, y, &diff) == CG_OK && scan(diff, &s))
            mark(p, s.minabs < 1e-3, "l1_loss kink");
        cg_tensor_release(diff);
        cg_set_grad_enabled(prev);
        return cg_l1_loss(x, y, red, out);
    }
    case OP_CROSS_ENTROPY:
        return cg_cross_entropy(x, y, NULL, -100, red, o->c & 1 ? 0.0 : 0.25,
                                out);
    default:
        return cg_error(CG_ERR_VALUE, "not a binary op");
    }
}

typedef struct stack {
    cg_tensor *t[MAX_STACK];
    int n;
} stack;

static void stack_clear(stack *st)
{
    for (int i = 0; i < st->n; i++)
        cg_tensor_release(st->t[i]);
    st->n = 0;
}

/* Runs the program on `inputs`; *out is the top of the stack (summed when
 * it has more than MAX_OUT elements). Fails only on out of memory. */
static cg_status run(cg_tensor *const *inputs, int n, cg_tensor **out,
                     void *user)
{
    prog *p = user;
    stack st = {{0}, 0};
    for (int i = 0; i < n; i++)
        st.t[st.n++] = cg_tensor_retain(inputs[i]);
    for (int k = 0; k < p->nops; k++) {
        const op *o = &p->ops[k];
        cg_tensor *top = st.t[st.n - 1], *res = NULL;
        cg_status s;
        if (o->code == OP_PUSH) {
            if (st.n < MAX_STACK) {
                /* picked among the st.n tensors before the push */
                cg_tensor *dup = st.t[o->a % st.n];
                st.t[st.n++] = cg_tensor_retain(dup);
            }
            continue;
        }
        if (o->code == OP_POP) {
            if (st.n > 1)
                cg_tensor_release(st.t[--st.n]);
            continue;
        }
        if (o->code >= OP_ADD)
            s = binary(p, o, top, st.t[o->a % st.n], &res);
        else
            s = unary(p, o, top, &res);
        if (s == CG_ERR_NOMEM) {
            stack_clear(&st);
            return s;
        }
        if (s != CG_OK || cg_tensor_dim(res) > MAX_RANK ||
            cg_tensor_numel(res) > 512) {
            cg_tensor_release(res);
            cg_clear_error();
            continue;
        }
        stats v;
        if (scan(res, &v))
            mark(p, v.nonfinite || v.maxabs > 1e3, "large or non-finite value");
        cg_tensor_release(st.t[st.n - 1]);
        st.t[st.n - 1] = res;
    }
    cg_tensor *r = cg_tensor_retain(st.t[st.n - 1]);
    stack_clear(&st);
    if (cg_tensor_numel(r) > MAX_OUT) {
        cg_tensor *sum = NULL;
        cg_status s = cg_sum(r, &sum);
        cg_tensor_release(r);
        if (s != CG_OK)
            return s;
        r = sum;
    }
    *out = r;
    return CG_OK;
}

/* ---- the target ---------------------------------------------------------- */

static void report(const prog *p, cg_tensor *const *leaves, int n,
                   const cg_gradcheck_result *res)
{
    fprintf(stderr, "gradcheck failed on a safe program:\n");
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "leaf %d: ", i);
        cg_tensor_print(leaves[i], stderr);
    }
    for (int k = 0; k < p->nops; k++)
        fprintf(stderr, "  %s(a=%u, b=%u, c=%u)\n", OP_NAMES[p->ops[k].code],
                p->ops[k].a, p->ops[k].b, p->ops[k].c);
    fprintf(stderr, "%s\n", res->message);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader rd = {data, size}, *r = &rd;
    prog p = {0};
    p.nleaves = 1 + (int)fz_pick(r, 3);
    int base_rank = (int)fz_pick(r, 4);
    int64_t base[3];
    for (int i = 0; i < base_rank; i++)
        base[i] = 1 + (int64_t)fz_pick(r, 3);

    cg_tensor *leaves[3] = {NULL, NULL, NULL};
    int made = 0;
    for (int l = 0; l < p.nleaves; l++) {
        int64_t shape[3];
        int rank = base_rank;
        unsigned variant = fz_pick(r, 4), mask = fz_u8(r);
        for (int i = 0; i < rank; i++)
            shape[i] = base[i];
        if (variant == 1) {
            for (int i = 0; i < rank; i++)
                if (mask >> i & 1)
                    shape[i] = 1;
        } else if (variant == 2 && rank > 0) {
            rank -= 1 + (int)(mask % (unsigned)rank);
            for (int i = 0; i < rank; i++)
                shape[i] = base[base_rank - rank + i];
        } else if (variant == 3) {
            for (int i = 0; i < rank; i++)
                shape[i] = base[rank - 1 - i];
        }
        cg_dtype dt = fz_pick(r, 5) == 0 ? CG_COMPLEX128 : CG_FLOAT64;
        int64_t numel = 1;
        for (int i = 0; i < rank; i++)
            numel *= shape[i];
        int64_t count = numel * (dt == CG_COMPLEX128 ? 2 : 1);
        double vals[54];
        for (int64_t i = 0; i < count; i++) {
            /* quantised, then nudged so no two are equal and none is 0 */
            double q = (double)(int8_t)fz_u8(r) / 40.0;
            vals[i] = q + 0.0137 * (double)(1 + (i * 37 + l * 11) % 29) / 29.0;
        }
        if (cg_tensor_from_data(vals, shape, rank, dt, &leaves[l]) != CG_OK)
            goto done;
        cg_tensor_requires_grad_(leaves[l], true);
        made++;
    }
    p.nops = 1 + (int)fz_pick(r, MAX_OPS);
    for (int k = 0; k < p.nops; k++) {
        p.ops[k].code = (uint8_t)fz_pick(r, OP_COUNT);
        p.ops[k].a = fz_u8(r);
        p.ops[k].b = fz_u8(r);
        p.ops[k].c = fz_u8(r);
    }

    cg_gradcheck_result res;
    cg_status st = cg_gradcheck(run, &p, leaves, made, NULL, &res);
    if (st != CG_OK)
        not_run++;
    else if (p.unsafe)
        unsafe_runs++;
    else
        judged++;
    if (st == CG_OK && !res.passed && !p.unsafe) {
        report(&p, leaves, made, &res);
        FUZZ_CHECK(!"gradcheck failed on a safe program");
    }

done:
    for (int l = 0; l < 3; l++)
        cg_tensor_release(leaves[l]);
    cg_clear_error();
    return 0;
}
