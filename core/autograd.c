/*
 * autograd.c -- the dynamic graph (define-by-run) and the backward engine,
 * mirroring torch.autograd in PyTorch 1.13.
 *
 * Every differentiable op that sees an input requiring grad (with grad mode
 * on) records a node on its output: PyTorch's grad_fn, named as PyTorch
 * names it, with edges to its inputs' nodes in next_functions order. A leaf
 * that requires grad gets an AccumulateGrad node, created on first use and
 * weakly remembered by the leaf. A node holds its inputs' nodes and its
 * saved tensors, never its own output, so graphs have no cycles.
 *
 * backward() is transactional, which PyTorch is not: it first checks every
 * node it will run (saved tensors freed by an earlier backward, in-place
 * modification since saving), then computes all gradients, and only when
 * everything succeeded does it write .grad of the leaves (and of non-leaves
 * that retain their grad) and free saved tensors. So an error, including
 * running out of memory, leaves every tensor as it was.
 *
 * Ordering is PyTorch's: a node runs once all gradients for its output have
 * arrived (a dependency count, no recursion, so a graph 100,000 nodes deep
 * is fine), and among ready nodes the most recently created runs first.
 * Freeing a graph is iterative for the same reason.
 *
 * Not here: the ops themselves (each op's file has its forward and
 * backward), create_graph (higher-order gradients), hooks other than
 * retain_grad and post-accumulate-grad hooks, anomaly mode.
 */
#include "autograd_internal.h"

#include <stdlib.h>
#include <string.h>

static _Thread_local bool grad_disabled; /* grad mode is thread-local */
static atomic_ullong next_seq;

/* AccumulateGrad never runs through the op table: the engine writes the
 * leaf's .grad itself when it commits. */
const cg_op_def cg__accumulate_grad_op = {"AccumulateGrad", NULL, NULL};

/* ---- grad mode ----------------------------------------------------------- */

bool cg_is_grad_enabled(void)
{
    return !grad_disabled;
}

bool cg_set_grad_enabled(bool enabled)
{
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

/* ---- node lifetime ----------------------------------------------------------
 */

void cg__node_retain(cg_node *n)
{
    if (n)
        atomic_fetch_add(&n->refs, 1);
}

void cg__node_release_saved(cg_node *n)
{
    for (int i = 0; i < CG_NODE_MAX_SAVED; i++) {
        cg_tensor_release(n->saved[i].t);
        n->saved[i].t = NULL;
    }
    n->saved_released = true;
}

static void node_destroy(cg_node *n)
{
    cg__node_release_saved(n);
    if (n->ctx && n->op->release_ctx)
        n->op->release_ctx(n->ctx);
    if (n->variable) {
        if (n->variable->grad_accumulator == n)
            n->variable->grad_accumulator = NULL;
        cg_tensor_release(n->variable);
    }
    for (int i = 0; i < n->n_next; i++)
        cg__node_release(n->next[i].fn);
    cg_tensor_release(n->buffer);
    cg_tensor_release(n->pending_grad);
    cg__free(n->next);
    cg__free(n->ctx);
    cg__free(n);
}

/* Nodes whose last reference went away on this thread, freed by the
 * outermost cg__node_release so that a long chain never recurses. */
static _Thread_local cg_node *dying;
static _Thread_local bool freeing;

void cg__node_release(cg_node *n)
{
    if (!n || atomic_fetch_sub(&n->refs, 1) != 1)
        return;
    n->free_next = dying;
    dying = n;
    if (freeing)
        return;
    freeing = true;
    while (dying) {
        cg_node *m = dying;
        dying = m->free_next;
        node_destroy(m);
    }
    freeing = false;
}

void cg__autograd_tensor_dying(cg_tensor *t)
{
    if (t->grad_fn && t->grad_fn->retained == t)
        t->grad_fn->retained = NULL;
}

static cg_status node_new(const cg_op_def *op, int n_next, size_t ctx_size,
                          cg_node **out)
{
    cg_node *n = cg__calloc(1, sizeof *n);
    if (!n)
        return cg__error_nomem(sizeof *n);
    if (n_next > 0) {
        n->next = cg__calloc((size_t)n_next, sizeof *n->next);
        if (!n->next) {
            cg__free(n);
            return cg__error_nomem((size_t)n_next * sizeof *n->next);
        }
    }
    if (ctx_size > 0) {
        n->ctx = cg__calloc(1, ctx_size);
        if (!n->ctx) {
            cg__free(n->next);
            cg__free(n);
            return cg__error_nomem(ctx_size);
        }
    }
    atomic_init(&n->refs, 1);
    n->op = op;
    n->n_next = n_next;
    n->seq = atomic_fetch_add(&next_seq, 1);
    *out = n;
    return CG_OK;
}

static void set_meta(cg_node *n, const cg_tensor *t)
{
    n->out_dtype = t->dtype;
    n->out_ndim = t->ndim;
    memcpy(n->out_shape, t->shape, sizeof n->out_shape);
}

/* The edge a gradient for `t` flows along: its grad_fn, or the
 * AccumulateGrad of a leaf that requires grad (created on first use), or
 * none. */
cg_status cg__gradient_edge(cg_tensor *t, cg_edge *e)
{
    e->fn = NULL;
    e->input_nr = 0;
    if (!t || !t->requires_grad)
        return CG_OK;
    if (t->grad_fn) {
        cg__node_retain(t->grad_fn);
        e->fn = t->grad_fn;
        e->input_nr = t->output_nr;
        return CG_OK;
    }
    if (t->grad_accumulator) {
        cg__node_retain(t->grad_accumulator);
        e->fn = t->grad_accumulator;
        return CG_OK;
    }
    cg_node *acc = NULL;
    cg_status st = node_new(&cg__accumulate_grad_op, 0, 0, &acc);
    if (st != CG_OK)
        return st;
    acc->seq = UINT64_MAX; /* as PyTorch: accumulators are never delayed */
    acc->variable = cg_tensor_retain(t);
    set_meta(acc, t);
    t->grad_accumulator = acc; /* weak: the node owns the leaf */
    e->fn = acc;
    return CG_OK;
}

/* ---- recording --------------------------------------------------------------
 */

bool cg__should_record(cg_tensor *const *inputs, int n)
{
    if (grad_disabled)
        return false;
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad)
            return true;
    return false;
}

cg_status cg__record(cg_tensor *out, const cg_op_def *op,
                     cg_tensor *const *inputs, int n, size_t ctx_size,
                     cg_node **node, void **ctx)
{
    if (node)
        *node = NULL;
    if (ctx)
        *ctx = NULL;
    if (!cg__should_record(inputs, n))
        return CG_OK;
    cg_node *nd = NULL;
    cg_status st = node_new(op, n, ctx_size, &nd);
    if (st != CG_OK)
        return st;
    for (int i = 0; i < n; i++) {
        if ((st = cg__gradient_edge(inputs[i], &nd->next[i])) != CG_OK) {
            cg__node_release(nd);
            return st;
        }
    }
    set_meta(nd, out);
    cg__node_release(out->grad_fn);
    out->grad_fn = nd;
    out->output_nr = 0;
    out->requires_grad = true;
    if (node)
        *node = nd;
    if (ctx)
        *ctx = nd->ctx;
    return CG_OK;
}

cg_status cg__save(cg_node *node, int slot, cg_tensor *t, bool is_output)
{
    if (slot < 0 || slot >= CG_NODE_MAX_SAVED)
        return cg__error(CG_ERR_RUNTIME,
                         "internal error: saved-tensor slot %d out of range",
                         slot);
    cg_saved *s = &node->saved[slot];
    cg_tensor *keep = t;
    if (t && is_output) {
        /* an alias without autograd state: saving the output itself would
         * make output -> node -> output a cycle */
        cg_status st = cg__tensor_view_of(t, t->shape, t->strides, t->ndim,
                                          t->offset, &keep);
        if (st != CG_OK)
            return st;
    } else {
        cg_tensor_retain(keep);
    }
    cg_tensor_release(s->t);
    s->t = keep;
    s->version = t ? atomic_load(&t->storage->version) : 0;
    s->is_output = is_output;
    s->used = true;
    return CG_OK;
}

static const char *tensor_type_name(cg_dtype dt)
{
    switch (dt) {
    case CG_FLOAT64:
        return "torch.DoubleTensor";
    case CG_COMPLEX64:
        return "torch.ComplexFloatTensor";
    case CG_COMPLEX128:
        return "torch.ComplexDoubleTensor";
    default:
        return "torch.FloatTensor";
    }
}

cg_status cg__second_backward_error(void)
{
    return cg__error(
        CG_ERR_RUNTIME,
        "Trying to backward through the graph a second time (or directly "
        "access saved tensors after they have already been freed). Saved "
        "intermediate values of the graph are freed when you call "
        ".backward() or autograd.grad(). Specify retain_graph=True if you "
        "need to backward through the graph a second time or if you need "
        "to access saved tensors after calling backward.");
}

/* Checks one saved slot: freed by an earlier backward, or modified in
 * place since it was saved (PyTorch's version-counter message). */
cg_status cg__check_saved(const cg_node *node, int slot)
{
    const cg_saved *s = &node->saved[slot];
    if (!s->used)
        return CG_OK;
    if (node->saved_released)
        return cg__second_backward_error();
    if (!s->t)
        return CG_OK;
    uint64_t now = atomic_load(&s->t->storage->version);
    if (now == s->version)
        return CG_OK;
    char shape[512], which[128] = "";
    cg__format_shape(s->t->shape, s->t->ndim, shape, sizeof shape);
    const char *producer = s->is_output    ? node->op->name
                           : s->t->grad_fn ? s->t->grad_fn->op->name
                                           : NULL;
    if (producer)
        snprintf(which, sizeof which, ", which is output %d of %s,",
                 s->is_output ? 0 : s->t->output_nr, producer);
    return cg__error(
        CG_ERR_RUNTIME,
        "one of the variables needed for gradient computation has been "
        "modified by an inplace operation: [%s %s]%s is at version %llu; "
        "expected version %llu instead. Hint: enable anomaly detection to "
        "find the operation that failed to compute its gradient, with "
        "torch.autograd.set_detect_anomaly(True).",
        tensor_type_name(s->t->dtype), shape, which, (unsigned long long)now,
        (unsigned long long)s->version);
}

cg_status cg__saved(cg_node *node, int slot, cg_tensor **out)
{
    if (slot < 0 || slot >= CG_NODE_MAX_SAVED || !node->saved[slot].used)
        return cg__error(CG_ERR_RUNTIME,
                         "internal error: %s has no saved tensor %d",
                         node->op->name, slot);
    cg_status st = cg__check_saved(node, slot);
    if (st != CG_OK)
        return st;
    *out = node->saved[slot].t;
    return CG_OK;
}

cg_status cg__check_inplace(const cg_tensor *t, const char *what)
{
    if (grad_disabled || !t->requires_grad)
        return CG_OK;
    if (!t->grad_fn)
        return cg__error(CG_ERR_RUNTIME,
                         "a leaf Variable that requires grad is being used "
                         "in an in-place operation.");
    return cg__error(CG_ERR_RUNTIME,
                     "%s: cgrad does not record in-place operations on "
                     "tensors that require grad; use the out-of-place op, "
                     "or run it under no_grad",
                     what);
}

const char *cg__grad_fn_name(const cg_tensor *t)
{
    if (t->debug_grad_fn_name)
        return t->debug_grad_fn_name;
    return t->grad_fn ? t->grad_fn->op->name : NULL;
}

/* ---- tensor-level autograd API ----------------------------------------------
 */

bool cg_tensor_requires_grad(const cg_tensor *t)
{
    return t && t->requires_grad;
}

bool cg_tensor_is_leaf(const cg_tensor *t)
{
    return t && t->grad_fn == NULL;
}

cg_status cg_tensor_requires_grad_(cg_tensor *t, bool requires_grad)
{
    if (!t)
        return cg__error_null("tensor");
    if (t->grad_fn) {
        if (requires_grad)
            return CG_OK;
        return cg__error(CG_ERR_RUNTIME,
                         "you can only change requires_grad flags of leaf "
                         "variables. If you want to use a computed variable "
                         "in a subgraph that doesn't require differentiation "
                         "use var_no_grad = var.detach().");
    }
    t->requires_grad = requires_grad;
    return CG_OK;
}

cg_tensor *cg_tensor_grad(const cg_tensor *t)
{
    return t ? t->grad : NULL;
}

cg_status cg_tensor_set_grad(cg_tensor *t, cg_tensor *grad)
{
    if (!t)
        return cg__error_null("tensor");
    if (grad) {
        if (grad->dtype != t->dtype)
            return cg__error(CG_ERR_RUNTIME,
                             "assigned grad has data of a different type");
        bool same = grad->ndim == t->ndim;
        for (int i = 0; same && i < t->ndim; i++)
            same = grad->shape[i] == t->shape[i];
        if (!same)
            return cg__error(CG_ERR_RUNTIME,
                             "assigned grad has data of a different size");
    }
    cg_tensor_retain(grad);
    cg_tensor_release(t->grad);
    t->grad = grad;
    return CG_OK;
}

cg_status cg_tensor_zero_grad(cg_tensor *t, bool set_to_none)
{
    if (!t)
        return cg__error_null("tensor");
    if (!t->grad)
        return CG_OK;
    if (set_to_none) {
        cg_tensor_release(t->grad);
        t->grad = NULL;
        return CG_OK;
    }
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_tensor_zero_(t->grad);
    cg_set_grad_enabled(prev);
    return st;
}

cg_status cg_tensor_retain_grad(cg_tensor *t)
{
    if (!t)
        return cg__error_null("tensor");
    if (!t->requires_grad)
        return cg__error(CG_ERR_RUNTIME, "can't retain_grad on Tensor that has "
                                         "requires_grad=False");
    if (!t->grad_fn)
        return CG_OK; /* leaves always keep their grad */
    t->retains_grad = true;
    t->grad_fn->retained = t;
    return CG_OK;
}

bool cg_tensor_retains_grad(const cg_tensor *t)
{
    return t && t->grad_fn && t->retains_grad;
}

/* ---- post-accumulate-grad hooks ----------------------------------
 * Kept on the leaf's AccumulateGrad node, which each handle holds, so the
 * node (weakly remembered by the leaf) survives between backwards. The
 * engine runs them (engine.c, finish_leaf). */

cg_status
cg_tensor_register_post_accumulate_grad_hook(cg_tensor *t,
                                             cg_post_accumulate_grad_hook_fn fn,
                                             void *ctx, cg_hook_handle **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!fn)
        return cg__error_null("hook");
    if (!out)
        return cg__error_null("out");
    if (!t->requires_grad)
        return cg__error(CG_ERR_RUNTIME, "cannot register a hook on a tensor "
                                         "that doesn't require gradient");
    if (t->grad_fn)
        return cg__error(CG_ERR_RUNTIME, "post accumulate grad hooks cannot "
                                         "be registered on non-leaf tensors");
    cg_hook_handle *h = cg__calloc(1, sizeof *h);
    if (!h)
        return cg__error_nomem(sizeof *h);
    cg_edge e;
    cg_status st = cg__gradient_edge(t, &e);
    if (st != CG_OK) {
        cg__free(h);
        return st;
    }
    h->node = e.fn;
    h->fn = fn;
    h->ctx = ctx;
    cg_hook_handle **tail = &e.fn->post_acc_hooks;
    while (*tail)
        tail = &(*tail)->next;
    *tail = h;
    *out = h;
    return CG_OK;
}

void cg_hook_handle_remove(cg_hook_handle *h)
{
    if (!h)
        return;
    for (cg_hook_handle **p = &h->node->post_acc_hooks; *p; p = &(*p)->next) {
        if (*p == h) {
            *p = h->next;
            break;
        }
    }
    cg__node_release(h->node);
    cg__free(h);
}

cg_status cg_tensor_detach(cg_tensor *t, cg_tensor **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    return cg__tensor_view_of(t, t->shape, t->strides, t->ndim, t->offset, out);
}

/* ---- graph inspection -------------------------------------------------------
 */

const cg_node *cg_tensor_grad_fn(const cg_tensor *t)
{
    return t ? t->grad_fn : NULL;
}

const char *cg_node_name(const cg_node *n)
{
    return n ? n->op->name : NULL;
}

int cg_node_num_next(const cg_node *n)
{
    return n ? n->n_next : 0;
}

const cg_node *cg_node_next(const cg_node *n, int i, int *input_nr)
{
    if (!n || i < 0 || i >= n->n_next)
        return NULL;
    if (input_nr)
        *input_nr = n->next[i].input_nr;
    return n->next[i].fn;
}

const cg_tensor *cg_node_variable(const cg_node *n)
{
    return n ? n->variable : NULL;
}

int cg_node_num_saved(const cg_node *n)
{
    int k = 0;
    for (int i = 0; n && i < CG_NODE_MAX_SAVED; i++)
        k += n->saved[i].used && n->saved[i].t && !n->saved_released;
    return k;
}

const cg_tensor *cg_node_saved(const cg_node *n, int i)
{
    for (int s = 0; n && !n->saved_released && s < CG_NODE_MAX_SAVED; s++) {
        if (n->saved[s].used && n->saved[s].t && i-- == 0)
            return n->saved[s].t;
    }
    return NULL;
}

const int64_t *cg_node_output_shape(const cg_node *n, int *ndim)
{
    if (!n)
        return NULL;
    if (ndim)
        *ndim = n->out_ndim;
    return n->out_shape;
}
