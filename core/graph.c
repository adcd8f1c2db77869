/*
 * graph.c -- seeing the backward graph: t.grad_fn as an indented text tree
 * (cg_graph_print) and as a Graphviz digraph (cg_graph_write_dot).
 *
 * PyTorch has no built-in printer; this shows what PyTorch 1.13 exposes
 * through grad_fn, next_functions (None edges included, in order),
 * AccumulateGrad.variable and the saved tensors, in the spirit of
 * torchviz. Both printers walk the graph with an explicit stack (a chain
 * 100,000 nodes deep prints without recursion), build the whole text in
 * memory and write it at the end: running out of memory returns
 * CG_ERR_NOMEM having written nothing.
 *
 * Text tree (one line per next_functions entry, DFS in next_functions
 * order), for sum(exp(x * y) + x * y + x * 2):
 *     SumBackward0 []
 *     └─ AddBackward0 [2, 3]
 *        ├─ AddBackward0 [2, 3]
 *        │  ├─ ExpBackward0 [2, 3] saved: result [2, 3]
 *        │  │  └─ MulBackward0 #1 [2, 3] saved: x [2, 3], y [3]
 *        │  │     ├─ AccumulateGrad #2 (x [2, 3])
 *        │  │     └─ AccumulateGrad (y [3])
 *        │  └─ (see above) MulBackward0 #1
 *        └─ MulBackward0 [2, 3]
 *           ├─ (see above) AccumulateGrad #2
 *           └─ None
 * A node's line gives its name, its output shape and what it saved for
 * backward: a saved tensor shows its cg_tensor_name, "result" for the
 * op's own output, or just its shape; "saved: (freed)" after a backward
 * released them. A node reached along several edges is expanded once and
 * numbered ("MulBackward0 #1"); later edges print "(see above)
 * MulBackward0 #1". Levels deeper than MAX_INDENT are not drawn with
 * bars but prefixed with their depth, "[depth 70] └─ ...", so that the
 * text of a long chain grows linearly.
 *
 * DOT: one box per node, labelled with its name and output shape (and its
 * saved tensors), an AccumulateGrad filled and labelled with its leaf's
 * name and shape; an edge node -> next_functions[i] for each i in order,
 * labelled i (plus "(input_nr k)" when k is not 0), a None entry as a
 * plaintext "None" node of its own.
 *
 * Not here: dtypes and strides in the labels, hooks, anomaly metadata.
 */
#include "autograd_internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

/* Deeper levels are shown by number instead of indentation. */
#define MAX_INDENT 64

/* ---- a growable text buffer ---------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t n, cap;
    cg_status st; /* first failure, sticky */
} strbuf;

static void sb_reserve(strbuf *b, size_t extra)
{
    if (b->st != CG_OK || b->n + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->st = cg__error_nomem(SIZE_MAX);
            return;
        }
        cap *= 2;
    }
    char *s = cg__realloc(b->s, cap);
    if (!s) {
        b->st = cg__error_nomem(cap);
        return;
    }
    b->s = s;
    b->cap = cap;
}

static void sb_put(strbuf *b, const char *s, size_t len)
{
    sb_reserve(b, len);
    if (b->st != CG_OK)
        return;
    memcpy(b->s + b->n, s, len);
    b->n += len;
    b->s[b->n] = '\0';
}

static void sb_puts(strbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
sb_printf(strbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0) {
        if (b->st == CG_OK)
            b->st = cg__error(CG_ERR_RUNTIME, "internal error: bad format");
        return;
    }
    if ((size_t)len < sizeof small) {
        sb_put(b, small, (size_t)len);
        return;
    }
    sb_reserve(b, (size_t)len);
    if (b->st != CG_OK)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

/* Writes the buffer to f, or reports the buffer's failure. */
static cg_status sb_flush(strbuf *b, FILE *f)
{
    if (b->st != CG_OK)
        return b->st;
    if (b->n > 0 && fwrite(b->s, 1, b->n, f) != b->n)
        return cg__error(CG_ERR_IO, "could not write the graph");
    if (fflush(f) != 0 || ferror(f))
        return cg__error(CG_ERR_IO, "could not write the graph");
    return CG_OK;
}

/* ---- the distinct nodes of a graph, in DFS preorder ---------------------- */

typedef struct node_info {
    const cg_node *node;
    size_t indeg; /* edges into the node from the graph's nodes */
    int number;   /* shared nodes: #k in the text tree (0: none yet) */
    bool printed;
} node_info;

typedef struct graph {
    node_info *info; /* n distinct nodes, in DFS preorder */
    size_t n, cap;
    size_t *slots; /* open addressing: index+1 into info, 0 = empty */
    size_t nslots; /* a power of two */
} graph;

static size_t hash_ptr(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (size_t)x;
}

/* The index of n in g->info, or SIZE_MAX. */
static size_t graph_find(const graph *g, const cg_node *n)
{
    if (!g->nslots)
        return SIZE_MAX;
    size_t mask = g->nslots - 1;
    for (size_t i = hash_ptr(n) & mask;; i = (i + 1) & mask) {
        if (!g->slots[i])
            return SIZE_MAX;
        if (g->info[g->slots[i] - 1].node == n)
            return g->slots[i] - 1;
    }
}

static void slot_insert(size_t *slots, size_t nslots, const cg_node *n,
                        size_t idx)
{
    size_t mask = nslots - 1;
    size_t i = hash_ptr(n) & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = idx + 1;
}

/* Appends n (not yet present); its index is g->n - 1 afterwards. */
static cg_status graph_add(graph *g, const cg_node *n)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        node_info *v = cg__realloc(g->info, cap * sizeof *v);
        if (!v)
            return cg__error_nomem(cap * sizeof *v);
        g->info = v;
        g->cap = cap;
    }
    if (2 * (g->n + 1) > g->nslots) { /* keep the load at most 1/2 */
        size_t ns = g->nslots ? g->nslots * 2 : 128;
        size_t *slots = cg__calloc(ns, sizeof *slots);
        if (!slots)
            return cg__error_nomem(ns * sizeof *slots);
        for (size_t k = 0; k < g->n; k++)
            slot_insert(slots, ns, g->info[k].node, k);
        cg__free(g->slots);
        g->slots = slots;
        g->nslots = ns;
    }
    g->info[g->n] = (node_info){.node = n};
    slot_insert(g->slots, g->nslots, n, g->n);
    g->n++;
    return CG_OK;
}

static void graph_free(graph *g)
{
    cg__free(g->info);
    cg__free(g->slots);
}

/* A stack of pending edges for the walks. */
typedef struct frame {
    const cg_node *node; /* NULL: a None edge */
    size_t depth;
    bool last; /* the last entry of its parent's next_functions */
} frame;

typedef struct frame_stack {
    frame *v;
    size_t n, cap;
} frame_stack;

static cg_status push_frame(frame_stack *s, frame f)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        frame *v = cg__realloc(s->v, cap * sizeof *v);
        if (!v)
            return cg__error_nomem(cap * sizeof *v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = f;
    return CG_OK;
}

/* Pushes n's next_functions so that they pop in order. */
static cg_status push_children(frame_stack *s, const cg_node *n, size_t depth)
{
    for (int i = n->n_next - 1; i >= 0; i--) {
        frame f = {n->next[i].fn, depth + 1, i == n->n_next - 1};
        cg_status st = push_frame(s, f);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

/* Collects every node reachable from root once, in the order the text
 * tree expands them, counting the edges into each. */
static cg_status graph_build(graph *g, const cg_node *root)
{
    frame_stack s = {0};
    cg_status st = push_frame(&s, (frame){root, 0, true});
    while (st == CG_OK && s.n > 0) {
        frame f = s.v[--s.n];
        if (!f.node)
            continue;
        size_t k = graph_find(g, f.node);
        if (k != SIZE_MAX) {
            g->info[k].indeg++;
            continue;
        }
        if ((st = graph_add(g, f.node)) != CG_OK)
            break;
        g->info[g->n - 1].indeg = f.depth > 0;
        st = push_children(&s, f.node, f.depth);
    }
    cg__free(s.v);
    return st;
}

/* Every node reachable from root, each once, in DFS preorder along
 * next_functions (for gradcheck, which must find the leaves a backward
 * writes). *out is a cg__malloc'd array the caller frees with cg__free. */
cg_status cg__graph_nodes(const cg_node *root, const cg_node ***out, size_t *n)
{
    graph g = {0};
    *out = NULL;
    *n = 0;
    if (!root)
        return CG_OK;
    cg_status st = graph_build(&g, root);
    const cg_node **v = NULL;
    if (st == CG_OK) {
        v = cg__malloc(g.n * sizeof *v);
        if (!v)
            st = cg__error_nomem(g.n * sizeof *v);
    }
    if (st == CG_OK) {
        for (size_t k = 0; k < g.n; k++)
            v[k] = g.info[k].node;
        *out = v;
        *n = g.n;
    }
    graph_free(&g);
    return st;
}

/* ---- labels shared by both printers -------------------------------------- */

static bool is_accumulate(const cg_node *n)
{
    return n->op == &cg__accumulate_grad_op;
}

/* "[2, 3]" */
static void put_shape(strbuf *b, const int64_t *shape, int ndim)
{
    char buf[512];
    sb_puts(b, cg__format_shape(shape, ndim, buf, sizeof buf));
}

/* Appends text, escaped for a DOT string when `dot` is set. */
static void put_text(strbuf *b, const char *s, bool dot)
{
    if (!dot) {
        sb_puts(b, s);
        return;
    }
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_put(b, "\\", 1);
        if (*s == '\n')
            sb_puts(b, "\\n");
        else
            sb_put(b, s, 1);
    }
}

/* "x [2, 3]" or "[2, 3]": a leaf of an AccumulateGrad. */
static void put_variable(strbuf *b, const cg_tensor *v, bool dot)
{
    const char *name = cg_tensor_name(v);
    if (name) {
        put_text(b, name, dot);
        sb_puts(b, " ");
    }
    put_shape(b, v->shape, v->ndim);
}

/* `lead` then "x [2, 3], result [2, 3], [3]", or `lead` then "(freed)";
 * nothing when the node saved no tensor. */
static void put_saved(strbuf *b, const cg_node *n, const char *lead, bool dot)
{
    bool any = false;
    for (int s = 0; s < CG_NODE_MAX_SAVED; s++) {
        const cg_saved *sv = &n->saved[s];
        if (!sv->used)
            continue;
        if (n->saved_released) {
            sb_puts(b, lead);
            sb_puts(b, "(freed)");
            return;
        }
        if (!sv->t)
            continue;
        sb_puts(b, any ? ", " : lead);
        any = true;
        const char *name = cg_tensor_name(sv->t);
        if (!name && sv->is_output)
            name = "result";
        if (name) {
            put_text(b, name, dot);
            sb_puts(b, " ");
        }
        put_shape(b, sv->t->shape, sv->t->ndim);
    }
}

/* ---- text tree ----------------------------------------------------------- */

/* Bars of the ancestors and the branch glyph for an entry at `depth`. */
static void put_prefix(strbuf *b, const bool *last, size_t depth)
{
    if (depth == 0)
        return;
    if (depth > MAX_INDENT) {
        sb_printf(b, "[depth %zu] ", depth);
    } else {
        for (size_t d = 1; d < depth; d++)
            sb_puts(b, last[d] ? "   " : "\xe2\x94\x82  "); /* "│  " */
    }
    sb_puts(b, last[depth < MAX_INDENT ? depth : MAX_INDENT]
                   ? "\xe2\x94\x94\xe2\x94\x80 "   /* "└─ " */
                   : "\xe2\x94\x9c\xe2\x94\x80 "); /* "├─ " */
}

static cg_status write_tree(const cg_node *root, strbuf *b)
{
    graph g = {0};
    frame_stack s = {0};
    bool last[MAX_INDENT + 1] = {0};
    int shared = 0;
    cg_status st = graph_build(&g, root);
    if (st == CG_OK)
        st = push_frame(&s, (frame){root, 0, true});
    while (st == CG_OK && b->st == CG_OK && s.n > 0) {
        frame f = s.v[--s.n];
        last[f.depth < MAX_INDENT ? f.depth : MAX_INDENT] = f.last;
        put_prefix(b, last, f.depth);
        if (!f.node) {
            sb_puts(b, "None\n");
            continue;
        }
        node_info *in = &g.info[graph_find(&g, f.node)];
        if (in->printed) {
            sb_printf(b, "(see above) %s #%d\n", f.node->op->name, in->number);
            continue;
        }
        in->printed = true;
        sb_puts(b, f.node->op->name);
        if (in->indeg > 1) {
            in->number = ++shared;
            sb_printf(b, " #%d", in->number);
        }
        if (is_accumulate(f.node)) {
            sb_puts(b, " (");
            put_variable(b, f.node->variable, false);
            sb_puts(b, ")\n");
            continue;
        }
        sb_puts(b, " ");
        put_shape(b, f.node->out_shape, f.node->out_ndim);
        put_saved(b, f.node, " saved: ", false);
        sb_puts(b, "\n");
        st = push_children(&s, f.node, f.depth);
    }
    cg__free(s.v);
    graph_free(&g);
    return st != CG_OK ? st : b->st;
}

cg_status cg_graph_print(const cg_tensor *t, FILE *f)
{
    if (!t)
        return cg__error_null("tensor");
    if (!f)
        return cg__error_null("file");
    strbuf b = {0};
    cg_status st;
    if (!t->grad_fn) {
        sb_puts(&b, "None\n"); /* t.grad_fn is None */
        st = b.st;
    } else {
        st = write_tree(t->grad_fn, &b);
    }
    if (st == CG_OK)
        st = sb_flush(&b, f);
    cg__free(b.s);
    return st;
}

/* ---- Graphviz ------------------------------------------------------------ */

static void dot_node(strbuf *b, size_t id, const cg_node *n)
{
    sb_printf(b, "  n%zu [label=\"", id);
    put_text(b, n->op->name, true);
    if (is_accumulate(n)) {
        sb_puts(b, "\\n");
        put_variable(b, n->variable, true);
        sb_puts(b, "\", style=filled, fillcolor=lightblue];\n");
        return;
    }
    sb_puts(b, "\\n");
    put_shape(b, n->out_shape, n->out_ndim);
    put_saved(b, n, "\\nsaved: ", true);
    sb_puts(b, "\"];\n");
}

static cg_status write_dot(const cg_node *root, strbuf *b)
{
    graph g = {0};
    cg_status st = graph_build(&g, root);
    if (st != CG_OK) {
        graph_free(&g);
        return st;
    }
    size_t nones = 0;
    sb_puts(b, "digraph grad_fn {\n"
               "  graph [ordering=out];\n"
               "  node [shape=box, fontname=\"monospace\"];\n");
    for (size_t k = 0; k < g.n && b->st == CG_OK; k++)
        dot_node(b, k, g.info[k].node);
    /* edges in next_functions order, labelled with their position (and
     * input_nr when the node they lead to has several outputs) */
    for (size_t k = 0; k < g.n && b->st == CG_OK; k++) {
        const cg_node *n = g.info[k].node;
        for (int i = 0; i < n->n_next; i++) {
            const cg_edge *e = &n->next[i];
            if (!e->fn) {
                sb_printf(b, "  none%zu [label=\"None\", shape=plaintext];\n",
                          nones);
                sb_printf(b, "  n%zu -> none%zu [label=\"%d\"];\n", k, nones,
                          i);
                nones++;
                continue;
            }
            sb_printf(b, "  n%zu -> n%zu [label=\"%d", k, graph_find(&g, e->fn),
                      i);
            if (e->input_nr != 0)
                sb_printf(b, " (input_nr %d)", e->input_nr);
            sb_puts(b, "\"];\n");
        }
    }
    sb_puts(b, "}\n");
    graph_free(&g);
    return b->st;
}

cg_status cg_graph_write_dot(const cg_tensor *t, FILE *f)
{
    if (!t)
        return cg__error_null("tensor");
    if (!f)
        return cg__error_null("file");
    strbuf b = {0};
    cg_status st;
    if (!t->grad_fn) {
        sb_puts(&b, "digraph grad_fn {\n  none0 [label=\"None\", "
                    "shape=plaintext];\n}\n");
        st = b.st;
    } else {
        st = write_dot(t->grad_fn, &b);
    }
    if (st == CG_OK)
        st = sb_flush(&b, f);
    cg__free(b.s);
    return st;
}
