/*
 * gradcheck.c -- torch.autograd.gradcheck (PyTorch 1.13, slow mode):
 * compares the Jacobian the backward graph computes with central finite
 * differences.
 *
 * For f with one output y and the inputs x_i that require grad:
 *   numerical  J_i[j, k] = (y_k(x + eps e_j) - y_k(x - eps e_j)) / (2 eps),
 *              perturbing element j of x_i in place (first x - eps, then
 *              x + eps, then restoring the original bits);
 *   analytical J_i[j, k] = d(y_k)/d(x_i)[j] from one backward per output
 *              element k with grad_output = one-hot(k), run twice to check
 *              the backward is deterministic ("reentrant");
 *   an entry passes when |a - n| <= atol + rtol * |n|.
 * Complex values follow PyTorch's Wirtinger convention: a complex input
 * element is perturbed along its real and imaginary parts and the two
 * quotients combine to ds/dx + 1j * ds/dy (the conjugate Wirtinger
 * derivative that backward computes); a complex output is checked as two
 * real functions, its imaginary part first, then its real part (backward
 * with grad_output 1j * one-hot and one-hot: the backwards of torch.imag
 * and torch.real). Finally a backward with a zero grad_output must give
 * zero gradients ("backward not multiplied by grad_output").
 *
 * Where cgrad differs from PyTorch:
 *   - a non-double input that requires grad is a ValueError, not a
 *     warning;
 *   - every entry is compared and the worst one is reported, with
 *     PyTorch's message shortened to that entry, instead of stopping at
 *     the first (output part, input) pair whose Jacobians differ;
 *   - f receives, for each input that requires grad, a detached alias
 *     (same storage and name, requires_grad set), so backward writes no
 *     user tensor's .grad: leaves f captures elsewhere (say, a module's
 *     weights through `user`) have their .grad set aside during the check
 *     and put back afterwards, as torch.autograd.grad leaves them alone;
 *   - the analytical Jacobian is computed with grad mode on even if the
 *     caller turned it off, the numerical one with grad mode off.
 * As in PyTorch's message, "input j" counts only the inputs that require
 * grad; cg_gradcheck_result.input indexes the caller's inputs[] array.
 *
 * Not here: fast mode, forward-mode AD, batched gradients, sparse inputs,
 * several outputs, the undefined-gradient check.
 */
#include "autograd_internal.h"

#include <math.h>
#include <string.h>

/* graph.c: every node reachable from root, once each (cg__free the
 * array). */

cg_gradcheck_options cg_gradcheck_defaults(void)
{
    cg_gradcheck_options o = {.eps = 1e-6, .atol = 1e-5, .rtol = 1e-3};
    return o;
}

/* A leaf outside the inputs whose .grad is set aside while we run
 * backward, or a non-leaf that retains its grad. */
typedef struct stashed {
    cg_tensor *t;    /* owned reference */
    cg_tensor *grad; /* the caller's .grad (owned), put back at the end */
} stashed;

/* One input that requires grad and its Jacobian. */
typedef struct diff_input {
    int index;        /* in the caller's inputs[] */
    cg_tensor *alias; /* what f receives (borrowed from args) */
    int64_t numel;
    int comps;        /* 2 for a complex input, else 1 */
    double *ja;       /* analytical J: [numel][out_numel][parts][comps] */
    int64_t fails[2]; /* mismatched entries per output part */
} diff_input;

/* The worst entry seen, or the first of a given kind of failure. */
typedef struct entry {
    bool set;
    int d;             /* diff input */
    int64_t j, k;      /* input element, output element */
    int part;          /* 0 real part of the output, 1 imaginary part */
    double a[2], n[2]; /* analytical and numerical (re, im) */
    double excess;
} entry;

typedef struct gc {
    cg_gradcheck_fn f;
    void *user;
    int n;
    cg_tensor **args; /* what f receives: aliases or the caller's inputs */
    bool *owned;      /* args[i] is an alias we made */
    diff_input *di;
    int ndiff;
    double eps, atol, rtol;
    /* the output */
    cg_dtype out_dtype;
    int out_ndim;
    int64_t out_shape[CG_MAX_DIMS];
    int64_t out_numel;
    int parts; /* 2 for a complex output: real and imaginary */
    bool differentiable;
    stashed *stash;
    size_t nstash;
    double *row;     /* scratch: one gradient as doubles */
    double *ya, *yb; /* scratch: outputs of f(x - eps), f(x + eps) */
    double *col;     /* scratch: one numerical row [out][parts][comps] */
    /* verdict */
    entry worst, nondet, nonzero, unscaled;
} gc;

static const char *part_name(int part)
{
    return part ? "imaginary" : "real";
}

/* ---- running f ----------------------------------------------------------- */

static void format_size(const int64_t *shape, int ndim, char *buf, size_t n)
{
    char inner[400];
    cg__format_shape(shape, ndim, inner, sizeof inner);
    snprintf(buf, n, "torch.Size(%s)", inner);
}

/* Calls f; checks it produced a tensor of the first output's shape and
 * dtype (the first call records them). */
static cg_status call_f(gc *g, bool first, cg_tensor **out)
{
    cg_tensor *y = NULL;
    cg_status st = g->f(g->args, g->n, &y, g->user);
    if (st != CG_OK) {
        cg_tensor_release(y);
        return st;
    }
    if (!y)
        return cg__error(CG_ERR_MISUSE, "gradcheck: the function returned "
                                        "CG_OK but no output tensor");
    if (first) {
        g->out_dtype = y->dtype;
        g->out_ndim = y->ndim;
        memcpy(g->out_shape, y->shape, sizeof g->out_shape);
        g->out_numel = cg_tensor_numel(y);
        g->parts = cg_dtype_is_complex(y->dtype) ? 2 : 1;
        *out = y;
        return CG_OK;
    }
    bool same = y->ndim == g->out_ndim;
    for (int i = 0; same && i < y->ndim; i++)
        same = y->shape[i] == g->out_shape[i];
    if (!same) {
        char a[448], b[448];
        format_size(g->out_shape, g->out_ndim, a, sizeof a);
        format_size(y->shape, y->ndim, b, sizeof b);
        cg_tensor_release(y);
        return cg__error(CG_ERR_RUNTIME,
                         "Expected `func` to return outputs with the same "
                         "shape when inputs are perturbed by %g, but got: "
                         "shapes %s and %s.",
                         g->eps, a, b);
    }
    if (y->dtype != g->out_dtype) {
        cg_dtype dt = y->dtype;
        cg_tensor_release(y);
        return cg__error(CG_ERR_RUNTIME,
                         "Expected `func` to return outputs with the same "
                         "dtype when inputs are perturbed by %g, but got: "
                         "dtypes torch.%s and torch.%s.",
                         g->eps, cg_dtype_name(g->out_dtype),
                         cg_dtype_name(dt));
    }
    *out = y;
    return CG_OK;
}

/* ---- leaves outside the inputs ------------------------------------------- */

static bool is_arg(const gc *g, const cg_tensor *t)
{
    for (int i = 0; i < g->n; i++)
        if (g->owned[i] && g->args[i] == t)
            return true;
    return false;
}

/* Sets aside the .grad of every tensor a backward from y would write
 * besides our aliases: leaves (AccumulateGrad) and retained non-leaves. */
static cg_status stash_grads(gc *g, const cg_tensor *y)
{
    const cg_node **nodes;
    size_t n;
    cg_status st = cg__graph_nodes(y->grad_fn, &nodes, &n);
    if (st != CG_OK)
        return st;
    size_t count = 0;
    for (size_t k = 0; k < n; k++) {
        const cg_tensor *t =
            nodes[k]->variable ? nodes[k]->variable : nodes[k]->retained;
        count += t && !is_arg(g, t);
    }
    if (count > 0) {
        g->stash = cg__calloc(count, sizeof *g->stash);
        if (!g->stash) {
            cg__free((void *)nodes);
            return cg__error_nomem(count * sizeof *g->stash);
        }
    }
    for (size_t k = 0; k < n; k++) {
        cg_tensor *t =
            nodes[k]->variable ? nodes[k]->variable : nodes[k]->retained;
        if (!t || is_arg(g, t))
            continue;
        stashed *s = &g->stash[g->nstash++];
        s->t = cg_tensor_retain(t);
        s->grad = t->grad;
        t->grad = NULL;
    }
    cg__free((void *)nodes);
    return CG_OK;
}

/* Drops what a backward wrote into the stashed tensors. */
static void clear_stashed(gc *g)
{
    for (size_t k = 0; k < g->nstash; k++) {
        cg_tensor_release(g->stash[k].t->grad);
        g->stash[k].t->grad = NULL;
    }
}

static void restore_stashed(gc *g)
{
    clear_stashed(g);
    for (size_t k = 0; k < g->nstash; k++) {
        g->stash[k].t->grad = g->stash[k].grad;
        cg_tensor_release(g->stash[k].t);
    }
    cg__free(g->stash);
    g->stash = NULL;
    g->nstash = 0;
}

/* ---- the analytical Jacobian --------------------------------------------- */

static size_t ja_at(const gc *g, const diff_input *d, int64_t j, int64_t k,
                    int part)
{
    return ((((size_t)j * (size_t)g->out_numel + (size_t)k) * (size_t)g->parts +
             (size_t)part) *
            (size_t)d->comps);
}

/* One backward of y with grad_output go, into cleared .grad fields. */
static cg_status backward_once(gc *g, cg_tensor *y, cg_tensor *go, bool retain)
{
    for (int i = 0; i < g->ndiff; i++)
        cg_tensor_set_grad(g->di[i].alias, NULL);
    clear_stashed(g);
    return cg_tensor_backward(y, go, retain);
}

/* The gradient of diff input d after a backward, as doubles in g->row. */
static cg_status read_grad(gc *g, const diff_input *d)
{
    const cg_tensor *gr = d->alias->grad;
    int64_t n = d->numel * d->comps;
    if (!gr) {
        for (int64_t i = 0; i < n; i++)
            g->row[i] = 0.0;
        return CG_OK;
    }
    return cg_tensor_to_doubles(gr, g->row, n);
}

static cg_status analytical(gc *g, cg_tensor *y)
{
    cg_tensor *go = NULL;
    cg_status st = cg_zeros(g->out_shape, g->out_ndim, g->out_dtype, &go);
    if (st != CG_OK)
        return st;
    /* PyTorch checks the imaginary part of a complex output first */
    for (int pi = g->parts - 1; pi >= 0; pi--) {
        for (int64_t k = 0; k < g->out_numel; k++) {
            cg__store(go, k, pi ? 0.0 : 1.0, pi ? 1.0 : 0.0);
            for (int rep = 0; rep < 2; rep++) {
                if ((st = backward_once(g, y, go, true)) != CG_OK)
                    goto out;
                for (int i = 0; i < g->ndiff; i++) {
                    diff_input *d = &g->di[i];
                    if ((st = read_grad(g, d)) != CG_OK)
                        goto out;
                    for (int64_t j = 0; j < d->numel; j++) {
                        double *a = &d->ja[ja_at(g, d, j, k, pi)];
                        const double *r = &g->row[j * d->comps];
                        for (int c = 0; c < d->comps; c++) {
                            if (rep == 0) {
                                a[c] = r[c];
                            } else if (fabs(a[c] - r[c]) > 0.0 &&
                                       !g->nondet.set) {
                                entry *e = &g->nondet;
                                *e = (entry){.set = true,
                                             .d = i,
                                             .j = j,
                                             .k = k,
                                             .part = pi};
                                memcpy(e->a, a, (size_t)d->comps * sizeof *a);
                            }
                        }
                    }
                }
            }
            cg__store(go, k, 0.0, 0.0);
        }
    }
    /* backward must scale by grad_output: zeros in, zeros out (keeping
     * the graph, which may hold nodes of the caller's graphs) */
    if ((st = backward_once(g, y, go, true)) != CG_OK)
        goto out;
    for (int i = 0; i < g->ndiff && !g->unscaled.set; i++) {
        diff_input *d = &g->di[i];
        if (!d->alias->grad)
            continue;
        if ((st = read_grad(g, d)) != CG_OK)
            goto out;
        for (int64_t j = 0; j < d->numel * d->comps; j++) {
            if (g->row[j] != 0.0) {
                g->unscaled =
                    (entry){.set = true, .d = i, .j = j / d->comps, .k = -1};
                g->unscaled.a[j % d->comps] = g->row[j];
                break;
            }
        }
    }
out:
    for (int i = 0; i < g->ndiff; i++)
        cg_tensor_set_grad(g->di[i].alias, NULL);
    cg_tensor_release(go);
    return st;
}

/* ---- the numerical Jacobian and the comparison --------------------------- */

/* f at the current inputs, as doubles (re, im pairs for complex). */
static cg_status eval_doubles(gc *g, double *dst)
{
    cg_tensor *y = NULL;
    cg_status st = call_f(g, false, &y);
    if (st != CG_OK)
        return st;
    st = cg_tensor_to_doubles(y, dst, g->out_numel * g->parts);
    cg_tensor_release(y);
    return st;
}

/* Compares one numerical entry with its analytical value. */
static void compare(gc *g, int i, int64_t j, int64_t k, int part,
                    const double *num)
{
    diff_input *d = &g->di[i];
    double a[2] = {0.0, 0.0}, n[2] = {num[0], d->comps > 1 ? num[1] : 0.0};
    if (g->differentiable) {
        const double *src = &d->ja[ja_at(g, d, j, k, part)];
        a[0] = src[0];
        a[1] = d->comps > 1 ? src[1] : 0.0;
    } else if ((n[0] != 0.0 || n[1] != 0.0) && !g->nonzero.set) {
        /* no differentiable output: the function must be constant */
        g->nonzero = (entry){.set = true,
                             .d = i,
                             .j = j,
                             .k = k,
                             .part = part,
                             .n = {n[0], n[1]}};
    }
    entry *nd = &g->nondet;
    if (nd->set && nd->d == i && nd->j == j && nd->k == k && nd->part == part)
        memcpy(nd->n, n, sizeof n);
    double diff = hypot(a[0] - n[0], a[1] - n[1]);
    double tol = g->atol + g->rtol * hypot(n[0], n[1]);
    bool ok = diff <= tol;
    double excess = isnan(diff - tol) ? INFINITY : diff - tol;
    if (!ok && g->differentiable)
        d->fails[part]++;
    if (!g->worst.set || excess > g->worst.excess)
        g->worst = (entry){.set = true,
                           .d = i,
                           .j = j,
                           .k = k,
                           .part = part,
                           .a = {a[0], a[1]},
                           .n = {n[0], n[1]},
                           .excess = excess};
}

static cg_status numerical(gc *g)
{
    int64_t per = g->out_numel * g->parts;
    for (int i = 0; i < g->ndiff; i++) {
        diff_input *d = &g->di[i];
        cg_tensor *x = d->alias;
        if (d->numel == 0)
            continue;
        cg_iter it;
        cg__iter_init(&it, x);
        int64_t j = 0;
        do {
            for (int c = 0; c < d->comps; c++) {
                double *p = (double *)cg__elem_ptr(x, it.pos) + c;
                double orig;
                memcpy(&orig, p, sizeof orig);
                *p = orig - g->eps;
                cg__bump_version(x);
                cg_status st = eval_doubles(g, g->ya);
                if (st == CG_OK) {
                    *p = orig + g->eps;
                    cg__bump_version(x);
                    st = eval_doubles(g, g->yb);
                }
                memcpy(p, &orig, sizeof orig); /* the exact original bits */
                cg__bump_version(x);
                if (st != CG_OK)
                    return st;
                for (int64_t q = 0; q < per; q++)
                    g->col[q * d->comps + c] =
                        (g->yb[q] - g->ya[q]) / (2.0 * g->eps);
            }
            /* g->col[(k * parts + part) * comps + c]; the output's real
             * part is index 0 of each (re, im) pair */
            for (int pi = g->parts - 1; pi >= 0; pi--)
                for (int64_t k = 0; k < g->out_numel; k++)
                    compare(g, i, j, k, pi,
                            &g->col[(k * g->parts + pi) * d->comps]);
            j++;
        } while (cg__iter_next(&it));
    }
    return CG_OK;
}

/* ---- the verdict --------------------------------------------------------- */

static void format_value(char *buf, size_t n, const double *v, bool is_cplx)
{
    if (is_cplx)
        snprintf(buf, n, "(%.10g%+.10gj)", v[0], v[1]);
    else
        snprintf(buf, n, "%.10g", v[0]);
}

/* Fills res from an entry; for a complex input the doubles hold the
 * component (real or imaginary part of the Jacobian entry) that differs
 * most. */
static void fill_entry(const gc *g, const entry *e, cg_gradcheck_result *res)
{
    const diff_input *d = &g->di[e->d];
    int c = d->comps > 1 && fabs(e->a[1] - e->n[1]) > fabs(e->a[0] - e->n[0]);
    res->input = d->index;
    res->input_index = e->j;
    res->output_index = e->k;
    res->imag_part = e->part == 1;
    res->analytic = e->a[c];
    res->numeric = e->n[c];
}

static void verdict(const gc *g, cg_gradcheck_result *res)
{
    memset(res, 0, sizeof *res);
    res->passed = true;
    res->input = -1;
    res->input_index = res->output_index = -1;
    if (g->worst.set)
        fill_entry(g, &g->worst, res);
    if (!g->differentiable) {
        if (!g->nonzero.set)
            return;
        fill_entry(g, &g->nonzero, res);
        res->passed = false;
        snprintf(res->message, sizeof res->message,
                 "Numerical gradient for function expected to be zero");
        return;
    }
    if (g->nondet.set) {
        fill_entry(g, &g->nondet, res);
        res->passed = false;
        snprintf(res->message, sizeof res->message,
                 "Backward is not reentrant, i.e., running backward with "
                 "same input and grad_output multiple times gives different "
                 "values, although analytical gradient matches numerical "
                 "gradient.The tolerance for nondeterminism was 0.0.");
        return;
    }
    if (g->worst.set && g->worst.excess > 0.0) {
        const entry *e = &g->worst;
        const diff_input *d = &g->di[e->d];
        char num[96], ana[96], prefix[96] = "";
        format_value(num, sizeof num, e->n, d->comps > 1);
        format_value(ana, sizeof ana, e->a, d->comps > 1);
        if (g->parts > 1)
            snprintf(prefix, sizeof prefix,
                     "While considering the %s part of complex outputs "
                     "only, ",
                     part_name(e->part));
        res->passed = false;
        snprintf(res->message, sizeof res->message,
                 "%sJacobian mismatch for output 0 with respect to input "
                 "%d,\nnumerical:%s\nanalytical:%s\n(the worst of %lld "
                 "mismatched entries: input element %lld, output element "
                 "%lld)",
                 prefix, e->d, num, ana, (long long)d->fails[e->part],
                 (long long)e->j, (long long)e->k);
        return;
    }
    if (g->unscaled.set) {
        fill_entry(g, &g->unscaled, res);
        res->passed = false;
        snprintf(res->message, sizeof res->message,
                 "backward not multiplied by grad_output");
    }
}

/* ---- setup and teardown -------------------------------------------------- */

static cg_status check_inputs(cg_tensor *const *inputs, int n)
{
    bool any = false;
    for (int i = 0; i < n; i++) {
        const cg_tensor *x = inputs[i];
        if (!x || !x->requires_grad)
            continue;
        if (x->dtype != CG_FLOAT64 && x->dtype != CG_COMPLEX128)
            return cg__error(CG_ERR_VALUE,
                             "Input #%d requires gradient and is not a double "
                             "precision floating point or complex. This check "
                             "will likely fail if all the inputs are not of "
                             "double precision floating point or complex.",
                             i);
        for (int k = 0; k < x->ndim; k++)
            if (x->strides[k] <= 0 && x->shape[k] > 1)
                return cg__error(
                    CG_ERR_RUNTIME,
                    "The %dth input has a dimension with stride 0. gradcheck "
                    "only supports inputs that are non-overlapping to be able "
                    "to compute the numerical gradients correctly. You should "
                    "call .contiguous on the input before passing it to "
                    "gradcheck.",
                    i);
        any = true;
    }
    if (!any)
        return cg__error(CG_ERR_VALUE,
                         "gradcheck expects at least one input tensor to "
                         "require gradient, but none of the them have "
                         "requires_grad=True.");
    return CG_OK;
}

static void *alloc_doubles(int64_t count, cg_status *st)
{
    size_t n = count > 0 ? (size_t)count : 1;
    if (count < 0 || n > SIZE_MAX / sizeof(double)) {
        *st = cg__error(CG_ERR_RUNTIME, "gradcheck: the Jacobian is too large");
        return NULL;
    }
    double *p = cg__malloc(n * sizeof *p);
    if (!p)
        *st = cg__error_nomem(n * sizeof *p);
    return p;
}

/* Gives f one alias per distinct input that requires grad (an input passed
 * twice is one tensor, as in PyTorch). */
static cg_status make_args(gc *g, cg_tensor *const *inputs)
{
    for (int i = 0; i < g->n; i++) {
        cg_tensor *x = inputs[i];
        if (!x || !x->requires_grad) {
            g->args[i] = x;
            continue;
        }
        diff_input *d = &g->di[g->ndiff++];
        d->index = i;
        d->numel = cg_tensor_numel(x);
        d->comps = cg_dtype_is_complex(x->dtype) ? 2 : 1;
        for (int p = 0; p < i; p++) {
            if (inputs[p] == x) {
                g->args[i] = g->args[p];
                break;
            }
        }
        if (!g->args[i]) {
            cg_tensor *a;
            cg_status st = cg__tensor_view_of(x, x->shape, x->strides, x->ndim,
                                              x->offset, &a);
            if (st != CG_OK)
                return st;
            a->requires_grad = true;
            memcpy(a->name, x->name, sizeof a->name);
            g->args[i] = a;
            g->owned[i] = true;
        }
        d->alias = g->args[i];
    }
    return CG_OK;
}

static void gc_free(gc *g)
{
    restore_stashed(g);
    for (int i = 0; i < g->n; i++)
        if (g->owned && g->owned[i])
            cg_tensor_release(g->args[i]);
    for (int i = 0; i < g->ndiff; i++)
        cg__free(g->di[i].ja);
    cg__free(g->args);
    cg__free(g->owned);
    cg__free(g->di);
    cg__free(g->row);
    cg__free(g->ya);
    cg__free(g->yb);
    cg__free(g->col);
}

cg_status cg_gradcheck(cg_gradcheck_fn f, void *user, cg_tensor *const *inputs,
                       int n, const cg_gradcheck_options *opts,
                       cg_gradcheck_result *res)
{
    if (!f)
        return cg__error_null("f");
    if (!res)
        return cg__error_null("res");
    if (n < 0)
        return cg__error(CG_ERR_VALUE,
                         "gradcheck: the number of inputs must be >= 0, got %d",
                         n);
    if (n > 0 && !inputs)
        return cg__error_null("inputs");
    cg_status st = check_inputs(inputs, n);
    if (st != CG_OK)
        return st;
    cg_gradcheck_options o = opts ? *opts : cg_gradcheck_defaults();
    gc g = {.f = f,
            .user = user,
            .n = n,
            .eps = o.eps,
            .atol = o.atol,
            .rtol = o.rtol};
    bool prev = cg_set_grad_enabled(true);
    cg_tensor *y = NULL;
    g.args = cg__calloc((size_t)n, sizeof *g.args);
    g.owned = cg__calloc((size_t)n, sizeof *g.owned);
    g.di = cg__calloc((size_t)n, sizeof *g.di);
    if (!g.args || !g.owned || !g.di) {
        st = cg__error_nomem((size_t)n * sizeof *g.di);
        goto out;
    }
    if ((st = make_args(&g, inputs)) != CG_OK)
        goto out;

    /* the output and its Jacobian from backward */
    if ((st = call_f(&g, true, &y)) != CG_OK)
        goto out;
    g.differentiable = y->requires_grad;
    int64_t max_in = 0;
    for (int i = 0; i < g.ndiff; i++) {
        diff_input *d = &g.di[i];
        int64_t cells;
        if (d->numel * d->comps > max_in)
            max_in = d->numel * d->comps;
        if (!g.differentiable)
            continue;
        if (!cg__mul_overflow(d->numel, g.out_numel, &cells) ||
            !cg__mul_overflow(cells, g.parts * d->comps, &cells)) {
            st = cg__error(CG_ERR_RUNTIME,
                           "gradcheck: the Jacobian is too large");
            goto out;
        }
        if (!(d->ja = alloc_doubles(cells, &st)))
            goto out;
    }
    int64_t per = g.out_numel * g.parts;
    if (!(g.row = alloc_doubles(max_in, &st)) ||
        !(g.ya = alloc_doubles(per, &st)) ||
        !(g.yb = alloc_doubles(per, &st)) ||
        !(g.col = alloc_doubles(per * 2, &st)))
        goto out;
    if (g.differentiable) {
        if ((st = stash_grads(&g, y)) != CG_OK ||
            (st = analytical(&g, y)) != CG_OK)
            goto out;
    }
    /* the saved tensors of y's graph see the inputs' versions move below */
    cg_tensor_release(y);
    y = NULL;
    restore_stashed(&g);

    /* finite differences, compared entry by entry */
    cg_set_grad_enabled(false);
    if ((st = numerical(&g)) != CG_OK)
        goto out;
    verdict(&g, res);
out:
    cg_tensor_release(y);
    gc_free(&g);
    cg_set_grad_enabled(prev);
    return st;
}
