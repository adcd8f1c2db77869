/*
 * engine.c -- the backward engine: t.backward(gradient, retain_graph), as
 * torch.autograd.backward in PyTorch 1.13, single-threaded per call.
 *
 * Four phases:
 *   1. discover the graph from the root (explicit stack) and count, for
 *      each node, the edges that lead into it (its dependencies);
 *   2. check every node that will run: saved tensors still there (no
 *      earlier backward freed them) and not modified in place since;
 *   3. run: a node is ready when all its dependencies have delivered; the
 *      newest ready node runs first (PyTorch's sequence-number order). Its
 *      backward gets the summed gradient of its output and returns one
 *      gradient per edge, which is added into the next node's buffer.
 *      AccumulateGrad nodes only collect (a leaf with post-accumulate-grad
 *      hooks has its .grad written and its hooks run as soon as its last
 *      gradient arrives, see finish_leaf);
 *   4. commit, which allocates nothing and so cannot fail: write the
 *      leaves' .grad (first gradient taken as is, later ones added in
 *      place) and retained non-leaf grads, and free saved tensors unless
 *      retain_graph.
 * An error in phases 1-3 changes nothing visible to the caller (but the
 * .grad of hooked leaves already finished).
 */
#include "autograd_internal.h"

#include <string.h>

static FILE *_Atomic trace_file;

void cg_autograd_set_trace(FILE *f)
{
    atomic_store(&trace_file, f);
}

/* ---- a growable array of nodes ------------------------------------------- */

typedef struct node_vec {
    cg_node **v;
    size_t n, cap;
} node_vec;

static cg_status vec_push(node_vec *a, cg_node *x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        cg_node **v = cg__realloc(a->v, cap * sizeof *v);
        if (!v)
            return cg__error_nomem(cap * sizeof *v);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return CG_OK;
}

/* Max-heap on seq: the most recently created ready node runs first. */
static cg_status heap_push(node_vec *h, cg_node *x)
{
    cg_status st = vec_push(h, x);
    if (st != CG_OK)
        return st;
    size_t i = h->n - 1;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->seq >= h->v[i]->seq)
            break;
        cg_node *t = h->v[p];
        h->v[p] = h->v[i];
        h->v[i] = t;
        i = p;
    }
    return CG_OK;
}

static cg_node *heap_pop(node_vec *h)
{
    cg_node *top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->v[l]->seq > h->v[m]->seq)
            m = l;
        if (r < h->n && h->v[r]->seq > h->v[m]->seq)
            m = r;
        if (m == i)
            break;
        cg_node *t = h->v[m];
        h->v[m] = h->v[i];
        h->v[i] = t;
        i = m;
    }
    return top;
}

/* ---- gradient arithmetic (no autograd) -------------------------------------
 */

static bool same_shape(const int64_t *a, int na, const int64_t *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* A tensor nobody else sees: safe to update in place or hand out as .grad. */
static bool is_private(const cg_tensor *t)
{
    return atomic_load(&t->refs) == 1 && atomic_load(&t->storage->refs) == 1 &&
           t->offset == 0 && cg_tensor_is_contiguous(t) && !t->grad_fn;
}

/* dst += src, same shape and dtype, any strides (each element of dst
 * distinct). Complex values add as their real and imaginary parts. Rows
 * along the last dimension go through typed loops with their strides,
 * the dimensions before it walked by index. */
#define DEFINE_ADD_ROWS(S, T)                                                  \
    static void add_row_##S(T *d, int64_t ds, const T *s, int64_t ss,          \
                            int64_t n, int parts)                              \
    {                                                                          \
        if (ds == 1 && ss == 1) { /* parts of one element adjacent too */      \
            for (int64_t i = 0; i < n * parts; i++)                            \
                d[i] += s[i];                                                  \
            return;                                                            \
        }                                                                      \
        for (int64_t i = 0; i < n; i++)                                        \
            for (int k = 0; k < parts; k++)                                    \
                d[i * ds * parts + k] += s[i * ss * parts + k];                \
    }
DEFINE_ADD_ROWS(f32, float)
DEFINE_ADD_ROWS(f64, double)
#undef DEFINE_ADD_ROWS

static void add_inplace(cg_tensor *dst, const cg_tensor *src)
{
    const int64_t n = cg_tensor_numel(dst);
    if (n == 0)
        return;
    const int parts = cg_dtype_is_complex(dst->dtype) ? 2 : 1;
    const bool f32 = cg_dtype_to_real(dst->dtype) == CG_FLOAT32;
    char *d0 = cg__elem_ptr(dst, dst->offset);
    const char *s0 = cg__elem_ptr(src, src->offset);
    const size_t esz = cg_dtype_size(dst->dtype);
    const int nd = dst->ndim;
    if (nd == 0 ||
        (cg_tensor_is_contiguous(dst) && cg_tensor_is_contiguous(src))) {
        if (f32)
            add_row_f32((float *)d0, 1, (const float *)s0, 1, n, parts);
        else
            add_row_f64((double *)d0, 1, (const double *)s0, 1, n, parts);
        return;
    }
    const int64_t len = dst->shape[nd - 1], ds = dst->strides[nd - 1],
                  ss = src->strides[nd - 1];
    /* the rows' starts: both tensors' dims but the last, in step */
    cg_iter a, b;
    cg__iter_init_dims(&a, dst->shape, dst->strides, nd - 1, 0);
    cg__iter_init_dims(&b, src->shape, src->strides, nd - 1, 0);
    do {
        char *d = d0 + (size_t)a.pos * esz;
        const char *sp = s0 + (size_t)b.pos * esz;
        if (f32)
            add_row_f32((float *)d, ds, (const float *)sp, ss, len, parts);
        else
            add_row_f64((double *)d, ds, (const double *)sp, ss, len, parts);
        cg__iter_next(&b);
    } while (cg__iter_next(&a));
}

/* *buf += g, taking a reference to g when *buf is empty and copying
 * before writing into anything shared. */
static cg_status accumulate(cg_tensor **buf, cg_tensor *g)
{
    if (!*buf) {
        *buf = cg_tensor_retain(g);
        return CG_OK;
    }
    if (!is_private(*buf)) {
        cg_tensor *c;
        cg_status st = cg_tensor_clone(*buf, &c);
        if (st != CG_OK)
            return st;
        cg_tensor_release(*buf);
        *buf = c;
    }
    add_inplace(*buf, g);
    return CG_OK;
}

/* Makes *t a private copy (see is_private), so commit can adopt it. */
static cg_status make_private(cg_tensor **t)
{
    if (is_private(*t))
        return CG_OK;
    cg_tensor *c;
    cg_status st = cg_tensor_clone(*t, &c);
    if (st != CG_OK)
        return st;
    cg_tensor_release(*t);
    *t = c;
    return CG_OK;
}

static cg_status not_requiring_grad_error(void)
{
    return cg__error(CG_ERR_RUNTIME, "element 0 of tensors does not require "
                                     "grad and does not have a grad_fn");
}

static void format_size(const int64_t *shape, int ndim, char *buf, size_t n)
{
    char inner[480];
    cg__format_shape(shape, ndim, inner, sizeof inner);
    snprintf(buf, n, "torch.Size(%s)", inner);
}

/* ---- the engine -------------------------------------------------------------
 */

typedef struct engine {
    node_vec nodes; /* every node reachable from the root */
    node_vec ready; /* heap of nodes whose inputs are complete */
    node_vec stack; /* discovery */
    bool retain_graph;
} engine;

static cg_status discover(engine *e, cg_node *root)
{
    cg_status st;
    if ((st = vec_push(&e->nodes, root)) != CG_OK)
        return st;
    root->queued = true;
    if ((st = vec_push(&e->stack, root)) != CG_OK)
        return st;
    while (e->stack.n > 0) {
        cg_node *n = e->stack.v[--e->stack.n];
        for (int i = 0; i < n->n_next; i++) {
            cg_node *m = n->next[i].fn;
            if (!m)
                continue;
            if (!m->queued) {
                /* listed before it is marked, so cleanup() always finds
                 * and resets every node this call touched */
                if ((st = vec_push(&e->nodes, m)) != CG_OK)
                    return st;
                m->queued = true;
                if ((st = vec_push(&e->stack, m)) != CG_OK)
                    return st;
            }
            m->deps++;
        }
    }
    return CG_OK;
}

static cg_status preflight(engine *e)
{
    for (size_t k = 0; k < e->nodes.n; k++) {
        cg_node *n = e->nodes.v[k];
        for (int s = 0; s < CG_NODE_MAX_SAVED; s++) {
            cg_status st = cg__check_saved(n, s);
            if (st != CG_OK)
                return st;
        }
    }
    return CG_OK;
}

static void trace_node(FILE *f, const cg_node *n, const cg_tensor *gy,
                       cg_tensor *const *gx)
{
    char buf[512];
    fprintf(f, "[backward] %s: grad_output %s", n->op->name,
            cg__format_shape(gy->shape, gy->ndim, buf, sizeof buf));
    fprintf(f, " -> grad_inputs (");
    for (int i = 0; i < n->n_next; i++) {
        fprintf(
            f, "%s%s", i ? ", " : "",
            gx[i] ? cg__format_shape(gx[i]->shape, gx[i]->ndim, buf, sizeof buf)
                  : "None");
    }
    fprintf(f, ")\n");
}

/* A leaf whose gradients have all arrived: with post-accumulate-grad
 * hooks, its .grad is written now rather than at commit (as
 * PyTorch's AccumulateGrad does) and the hooks run; without, nothing
 * happens until commit. No gradient arrived: no hook runs. */
static cg_status finish_leaf(cg_node *m)
{
    if (!m->post_acc_hooks || !m->buffer)
        return CG_OK;
    cg_tensor *v = m->variable;
    if (v->grad) {
        add_inplace(v->grad, m->buffer);
        cg__bump_version(v->grad);
        cg_tensor_release(m->buffer);
    } else {
        cg_status st = make_private(&m->buffer);
        if (st != CG_OK)
            return st;
        v->grad = m->buffer;
    }
    m->buffer = NULL;
    for (cg_hook_handle *h = m->post_acc_hooks; h;) {
        cg_hook_handle *next = h->next; /* a hook may remove itself */
        cg_status st = h->fn(v, h->ctx);
        if (st != CG_OK)
            return st;
        h = next;
    }
    return CG_OK;
}

/* Runs one node's backward and delivers its gradients. */
static cg_status run_node(engine *e, cg_node *n)
{
    cg_status st = CG_OK;
    cg_tensor *local[8] = {0};
    cg_tensor **gx = local;
    if (n->n_next > 8) {
        gx = cg__calloc((size_t)n->n_next, sizeof *gx);
        if (!gx)
            return cg__error_nomem((size_t)n->n_next * sizeof *gx);
    }
    if (n->buffer) {
        if (n->retained) {
            /* retain_grad: first gradient cloned, later ones added */
            cg_tensor *g = n->retained->grad;
            if (g) {
                cg_tensor *sum;
                if ((st = cg_tensor_clone(g, &sum)) != CG_OK)
                    goto out;
                add_inplace(sum, n->buffer);
                n->pending_grad = sum;
            } else if ((st = cg_tensor_clone(n->buffer, &n->pending_grad)) !=
                       CG_OK) {
                goto out;
            }
        }
        if (!n->op->backward) {
            st = cg__error(CG_ERR_RUNTIME, "internal error: %s has no backward",
                           n->op->name);
            goto out;
        }
        if ((st = n->op->backward(n, n->buffer, gx)) != CG_OK)
            goto out;
        FILE *f = atomic_load(&trace_file);
        if (f)
            trace_node(f, n, n->buffer, gx);
        for (int i = 0; i < n->n_next; i++) {
            cg_node *m = n->next[i].fn;
            if (!m || !gx[i])
                continue;
            if (!same_shape(gx[i]->shape, gx[i]->ndim, m->out_shape,
                            m->out_ndim)) {
                char got[256], want[256];
                st = cg__error(
                    CG_ERR_RUNTIME,
                    "Function %s returned an invalid gradient at index %d - "
                    "got %s but expected shape compatible with %s",
                    n->op->name, i,
                    cg__format_shape(gx[i]->shape, gx[i]->ndim, got,
                                     sizeof got),
                    cg__format_shape(m->out_shape, m->out_ndim, want,
                                     sizeof want));
                goto out;
            }
            if (gx[i]->dtype != m->out_dtype) {
                cg_tensor *c;
                if ((st = cg_tensor_to(gx[i], m->out_dtype, &c)) != CG_OK)
                    goto out;
                cg_tensor_release(gx[i]);
                gx[i] = c;
            }
            if ((st = accumulate(&m->buffer, gx[i])) != CG_OK)
                goto out;
        }
    }
    for (int i = 0; i < n->n_next; i++) {
        cg_node *m = n->next[i].fn;
        if (!m || --m->deps != 0)
            continue;
        if (m->op != &cg__accumulate_grad_op)
            st = heap_push(&e->ready, m);
        else
            st = finish_leaf(m);
        if (st != CG_OK)
            goto out;
    }
out:
    for (int i = 0; i < n->n_next; i++)
        cg_tensor_release(gx[i]);
    if (gx != local)
        cg__free(gx);
    return st;
}

/* Phase 4: nothing here allocates, so it cannot fail half-way. */
static void commit(engine *e)
{
    for (size_t k = 0; k < e->nodes.n; k++) {
        cg_node *n = e->nodes.v[k];
        if (n->op == &cg__accumulate_grad_op) {
            cg_tensor *v = n->variable;
            if (n->buffer) {
                if (v->grad) {
                    add_inplace(v->grad, n->buffer);
                    cg__bump_version(v->grad);
                } else {
                    v->grad = n->buffer;
                    n->buffer = NULL;
                }
            }
            continue;
        }
        if (n->pending_grad && n->retained) {
            cg_tensor_release(n->retained->grad);
            n->retained->grad = n->pending_grad;
            n->pending_grad = NULL;
        }
        if (!e->retain_graph)
            cg__node_release_saved(n);
    }
}

static void cleanup(engine *e)
{
    for (size_t k = 0; k < e->nodes.n; k++) {
        cg_node *n = e->nodes.v[k];
        n->deps = 0;
        n->queued = false;
        cg_tensor_release(n->buffer);
        n->buffer = NULL;
        cg_tensor_release(n->pending_grad);
        n->pending_grad = NULL;
    }
    cg__free(e->nodes.v);
    cg__free(e->ready.v);
    cg__free(e->stack.v);
}

/* The gradient that starts backward, checked in PyTorch's order: shape and
 * dtype of a given gradient first (torch.autograd's _make_grads), then
 * whether the output requires grad at all (the engine). */
static cg_status root_gradient(cg_tensor *t, cg_tensor *gradient,
                               cg_tensor **out)
{
    if (!gradient) {
        if (!t->requires_grad)
            return not_requiring_grad_error();
        if (cg_tensor_numel(t) != 1)
            return cg__error(CG_ERR_RUNTIME, "grad can be implicitly created "
                                             "only for scalar outputs");
        return cg_ones(t->shape, t->ndim, t->dtype, out);
    }
    if (!same_shape(gradient->shape, gradient->ndim, t->shape, t->ndim)) {
        char g[512], o[512];
        format_size(gradient->shape, gradient->ndim, g, sizeof g);
        format_size(t->shape, t->ndim, o, sizeof o);
        return cg__error(CG_ERR_RUNTIME,
                         "Mismatch in shape: grad_output[0] has a shape of %s "
                         "and output[0] has a shape of %s.",
                         g, o);
    }
    if (cg_dtype_is_complex(gradient->dtype) != cg_dtype_is_complex(t->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "For complex Tensors, both grad_output and output "
                         "are required to have the same dtype. Mismatch in "
                         "dtype: grad_output[0] has a dtype of torch.%s and "
                         "output[0] has a dtype of torch.%s.",
                         cg_dtype_name(gradient->dtype),
                         cg_dtype_name(t->dtype));
    if (!t->requires_grad)
        return not_requiring_grad_error();
    if (gradient->dtype != t->dtype)
        return cg_tensor_to(gradient, t->dtype, out);
    *out = cg_tensor_retain(gradient);
    return CG_OK;
}

cg_status cg_tensor_backward(cg_tensor *t, cg_tensor *gradient,
                             bool retain_graph)
{
    if (!t)
        return cg__error_null("tensor");
    bool prev = cg_set_grad_enabled(false);
    engine e = {.retain_graph = retain_graph};
    cg_edge root = {0};
    cg_tensor *g0 = NULL;
    cg_status st = root_gradient(t, gradient, &g0);
    if (st != CG_OK)
        goto out;
    if ((st = cg__gradient_edge(t, &root)) != CG_OK)
        goto out;
    if ((st = discover(&e, root.fn)) != CG_OK || (st = preflight(&e)) != CG_OK)
        goto out;
    if ((st = make_private(&g0)) != CG_OK)
        goto out;
    root.fn->buffer = g0;
    g0 = NULL;
    if (root.fn->op != &cg__accumulate_grad_op)
        st = heap_push(&e.ready, root.fn);
    else
        st = finish_leaf(root.fn); /* backward of a leaf itself */
    if (st != CG_OK)
        goto out;
    while (e.ready.n > 0) {
        if ((st = run_node(&e, heap_pop(&e.ready))) != CG_OK)
            goto out;
    }
    /* every leaf gradient must be adoptable without allocating at commit */
    for (size_t k = 0; k < e.nodes.n; k++) {
        cg_node *n = e.nodes.v[k];
        if (n->op == &cg__accumulate_grad_op && n->buffer &&
            !n->variable->grad && (st = make_private(&n->buffer)) != CG_OK)
            goto out;
    }
    commit(&e);
out:
    cleanup(&e);
    cg__node_release(root.fn);
    cg_tensor_release(g0);
    cg_set_grad_enabled(prev);
    return st;
}
