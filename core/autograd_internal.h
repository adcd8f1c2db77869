/*
 * autograd_internal.h -- graph nodes and how ops record them. Never
 * installed.
 *
 * A node is (op definition, edges to the nodes of its inputs, saved
 * state), micrograd's shape with PyTorch's names. An op records a node on
 * its output with cg__record(); its backward receives the gradient of its
 * output and returns one gradient per edge (NULL for "none").
 */
#ifndef CGRAD_AUTOGRAD_INTERNAL_H
#define CGRAD_AUTOGRAD_INTERNAL_H

#include "tensor_internal.h"

typedef struct cg_node cg_node;

/** Computes the gradients of a node's inputs from the gradient of its
 *  output. `gy` is the gradient of the output (never NULL: the engine
 *  passes zeros if nothing flowed in). gx[i] receives a new reference
 *  for edge i, or stays NULL when edge i needs no gradient (check
 *  cg__needs_grad(node, i) and skip the work). On failure, any gx already
 *  written are released by the engine. */
typedef cg_status (*cg_backward_fn)(cg_node *node, cg_tensor *gy,
                                    cg_tensor **gx);

/** One row of the op table: PyTorch's grad_fn name, the backward, and the
 *  release of resources the op's ctx owns (NULL for plain data), run when
 *  the node dies. Tensors needed by backward go in the cg_saved slots, not
 *  in ctx: the engine frees those after a backward without retain_graph,
 *  and a later backward through the node then fails with PyTorch's "second
 *  time" message; a node that saved nothing may run again, as in
 *  PyTorch. */
typedef struct cg_op_def {
    const char *name;
    cg_backward_fn backward;
    void (*release_ctx)(void *ctx);
} cg_op_def;

/** A tensor saved for backward, with the version it had when saved. */
typedef struct cg_saved {
    cg_tensor *t;     /* owned; for an op's own output: a detached alias */
    uint64_t version; /* storage version when saved */
    bool is_output;   /* for the message: "output 0 of <Name>" */
    bool used;        /* slot filled at record time (NULL tensor allowed) */
} cg_saved;

#define CG_NODE_MAX_SAVED 4

typedef struct cg_edge {
    cg_node *fn;  /* owned reference, NULL when the input needs no grad */
    int input_nr; /* which output of fn the gradient belongs to */
} cg_edge;

struct cg_node {
    atomic_long refs;
    const cg_op_def *op;
    uint64_t seq; /* creation order: the engine runs newer first */
    int n_next;
    cg_edge *next; /* n_next edges, PyTorch's next_functions order */
    /* metadata of the (single) forward output, to check gradients */
    cg_dtype out_dtype;
    int out_ndim;
    int64_t out_shape[CG_MAX_DIMS];
    cg_saved saved[CG_NODE_MAX_SAVED];
    bool saved_released; /* backward ran without retain_graph */
    cg_tensor *variable; /* AccumulateGrad: the leaf (owned) */
    struct cg_hook_handle *post_acc_hooks; /* AccumulateGrad: the leaf's
                                              post-accumulate-grad hooks,
                                              registration order */
    cg_tensor *retained; /* weak: the output that called retain_grad */
    void *ctx;           /* op parameters, ctx_size bytes, zeroed */
    /* engine scratch (one backward at a time per graph) */
    int64_t deps;
    cg_tensor *buffer;       /* gradient accumulated for the output */
    cg_tensor *pending_grad; /* .grad for `retained`, set at commit */
    bool queued;
    cg_node *free_next; /* intrusive list used when freeing iteratively */
};

/** Takes / drops a reference. Dropping the last one frees the node and,
 *  without recursion, every node only it kept alive. */
void cg__node_retain(cg_node *n);
void cg__node_release(cg_node *n);

/** Called by cg_tensor_release on a dying tensor: clears weak links. */
void cg__autograd_tensor_dying(cg_tensor *t);

/** A post-accumulate-grad hook: a list entry on the leaf's
 *  AccumulateGrad node, which it keeps alive (and the node the leaf). */
struct cg_hook_handle {
    cg_node *node; /* owned reference */
    cg_post_accumulate_grad_hook_fn fn;
    void *ctx;
    struct cg_hook_handle *next;
};

/** The AccumulateGrad op (engine.c commits it; it has no backward). */
extern const cg_op_def cg__accumulate_grad_op;

/** The edge a gradient for t flows along (t's grad_fn, its AccumulateGrad
 *  created on first use, or an empty edge); takes a node reference. */
cg_status cg__gradient_edge(cg_tensor *t, cg_edge *e);
/** Releases a node's saved tensors (after a backward without
 *  retain_graph); its ctx stays until the node dies. */
void cg__node_release_saved(cg_node *n);
/** The "Trying to backward through the graph a second time ..." error. */
cg_status cg__second_backward_error(void);
/** Every node reachable from root (root first), iteratively; *out is
 *  allocated with cg__malloc and owned by the caller (graph.c). */
cg_status cg__graph_nodes(const cg_node *root, const cg_node ***out, size_t *n);
/** Checks saved slot `slot`: freed by an earlier backward, or modified
 *  in place since it was saved (PyTorch's messages). */
cg_status cg__check_saved(const cg_node *node, int slot);

/** True when grad mode is on and any of the inputs requires grad: the op
 *  must record a node. */
bool cg__should_record(cg_tensor *const *inputs, int n);

/** Records a node of `op` on `out` with one edge per input (in PyTorch's
 *  next_functions order; a NULL input or one that needs no grad gets an
 *  empty edge). Sets out->grad_fn and out->requires_grad. ctx_size bytes
 *  of zeroed op state are allocated; *ctx (may be NULL) receives them.
 *  Does nothing (and sets *node to NULL) when cg__should_record is false.
 *  On failure `out` is unchanged. */
cg_status cg__record(cg_tensor *out, const cg_op_def *op,
                     cg_tensor *const *inputs, int n, size_t ctx_size,
                     cg_node **node, void **ctx);

/** Saves `t` (may be NULL) in slot `slot` of node. For the op's own output
 *  pass is_output true: a detached alias is kept, so no cycle forms. */
cg_status cg__save(cg_node *node, int slot, cg_tensor *t, bool is_output);
/** The saved tensor of `slot` (borrowed), checking it was not freed by an
 *  earlier backward and not modified in place since, with PyTorch's
 *  messages. */
cg_status cg__saved(cg_node *node, int slot, cg_tensor **out);

/** True when edge i of node leads somewhere (its input needs a grad). */
static inline bool cg__needs_grad(const cg_node *node, int i)
{
    return i < node->n_next && node->next[i].fn != NULL;
}

/** Before an in-place write to t: RuntimeError when t is a leaf that
 *  requires grad and grad mode is on ("a leaf Variable that requires grad
 *  is being used in an in-place operation."). `what` names the op. */
cg_status cg__check_inplace(const cg_tensor *t, const char *what);

/** The grad_fn name used when printing t, or NULL. */
const char *cg__grad_fn_name(const cg_tensor *t);

#endif /* CGRAD_AUTOGRAD_INTERNAL_H */
