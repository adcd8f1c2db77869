/*
 * state_dict.c -- state dicts: the ordered name -> value dictionary a
 * checkpoint holds, and Module.state_dict() / load_state_dict() on it.
 *
 * The dictionary (cg_state_dict) keeps PyTorch's nested state dicts
 * flattened with dotted names: a module's parameters and buffers
 * ("0.weight"), an optimizer's state and param_groups
 * ("state.0.exp_avg", "param_groups.0.lr"). A value is a tensor, a number,
 * a bool or None, so the tensors can go to a safetensors file and the rest
 * to its metadata (safetensors.c). Insertion order is kept, as Python
 * dicts keep it; replacing a name keeps its position.
 *
 * cg_module_state_dict mirrors PyTorch 1.13's Module.state_dict(): each
 * module's parameters, then its persistent buffers (None entries skipped),
 * then its children's, depth first, with dotted prefixes; the values are
 * detached views sharing storage (and version counter) with the module's
 * tensors, as keep_vars=False gives.
 *
 * cg_module_load_state_dict mirrors Module.load_state_dict(strict): the
 * same traversal, the same missing / unexpected key lists (kept even when
 * strict is false, where they are not errors), the same per-entry checks
 * and messages in the same order, joined into PyTorch's RuntimeError
 * "Error(s) in loading state_dict for <Class>:\n\t...". Unlike PyTorch,
 * which copies tensor by tensor and so leaves a model half loaded when a
 * later entry fails, everything is checked and every source prepared
 * before the first tensor is written: on any error the model is unchanged.
 * The copies run with grad mode off and bump each tensor's version
 * counter once, as param.copy_() under torch.no_grad() does.
 *
 * One deliberate difference: PyTorch copies a complex checkpoint tensor
 * into a real parameter with a warning, dropping the imaginary part;
 * cgrad's copy_ refuses that, and load_state_dict reports it in PyTorch's
 * "While copying the parameter named ..., an exception occurred" form.
 * Left out: hooks, _metadata (module versions), extra_state.
 */
#include "module_internal.h"

#include <stdio.h>
#include <string.h>

/* ======================================================================
 * The dictionary
 * ====================================================================== */

typedef struct sd_entry {
    char *name;
    cg_state_kind kind;
    cg_tensor *tensor; /* owned reference, CG_STATE_TENSOR only */
    double number;
} sd_entry;

struct cg_state_dict {
    int n, cap;
    sd_entry *e;
};

static const char *const kind_names[CG_STATE_KIND_COUNT] = {
    [CG_STATE_TENSOR] = "tensor",
    [CG_STATE_NUMBER] = "number",
    [CG_STATE_BOOL] = "bool",
    [CG_STATE_NONE] = "None",
};

const char *cg_state_kind_name(cg_state_kind kind)
{
    if ((int)kind < 0 || kind >= CG_STATE_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

cg_status cg_state_dict_new(cg_state_dict **out)
{
    if (!out)
        return cg__nn_null("out");
    cg_state_dict *sd = cg_calloc(1, sizeof *sd);
    if (!sd)
        return cg__nn_nomem(sizeof *sd);
    *out = sd;
    return CG_OK;
}

void cg_state_dict_free(cg_state_dict *sd)
{
    if (!sd)
        return;
    for (int i = 0; i < sd->n; i++) {
        cg_free(sd->e[i].name);
        cg_tensor_release(sd->e[i].tensor);
    }
    cg_free(sd->e);
    cg_free(sd);
}

int cg_state_dict_size(const cg_state_dict *sd)
{
    return sd ? sd->n : 0;
}

cg_status cg_state_dict_entry(const cg_state_dict *sd, int i, const char **name,
                              cg_state_kind *kind, cg_tensor **tensor,
                              double *number)
{
    if (!sd)
        return cg__nn_null("state dict");
    if (i < 0 || i >= sd->n)
        return cg_error(CG_ERR_INDEX, "list index out of range");
    const sd_entry *e = &sd->e[i];
    if (name)
        *name = e->name;
    if (kind)
        *kind = e->kind;
    if (tensor)
        *tensor = e->tensor;
    if (number)
        *number = e->number;
    return CG_OK;
}

int cg_state_dict_find(const cg_state_dict *sd, const char *name)
{
    if (!sd || !name)
        return -1;
    for (int i = 0; i < sd->n; i++)
        if (strcmp(sd->e[i].name, name) == 0)
            return i;
    return -1;
}

/* Adds or replaces one entry; takes a reference to t when given. */
static cg_status sd_set(cg_state_dict *sd, const char *name, cg_state_kind kind,
                        cg_tensor *t, double number)
{
    if (!sd)
        return cg__nn_null("state dict");
    if (!name)
        return cg__nn_null("name");
    int i = cg_state_dict_find(sd, name);
    if (i >= 0) {
        sd_entry *e = &sd->e[i];
        cg_tensor *old = e->tensor;
        e->kind = kind;
        e->tensor = t ? cg_tensor_retain(t) : NULL;
        e->number = number;
        cg_tensor_release(old);
        return CG_OK;
    }
    if (sd->n == sd->cap) {
        int cap = sd->cap ? 2 * sd->cap : 16;
        sd_entry *e = cg_realloc(sd->e, (size_t)cap * sizeof *e);
        if (!e)
            return cg__nn_nomem((size_t)cap * sizeof *e);
        sd->e = e;
        sd->cap = cap;
    }
    char *copy = cg__strdup(name);
    if (!copy)
        return cg__nn_nomem(strlen(name) + 1);
    sd->e[sd->n++] =
        (sd_entry){copy, kind, t ? cg_tensor_retain(t) : NULL, number};
    return CG_OK;
}

cg_status cg_state_dict_set_tensor(cg_state_dict *sd, const char *name,
                                   cg_tensor *t)
{
    if (!t)
        return cg__nn_null("tensor");
    return sd_set(sd, name, CG_STATE_TENSOR, t, 0.0);
}

cg_status cg_state_dict_set_number(cg_state_dict *sd, const char *name,
                                   double value)
{
    return sd_set(sd, name, CG_STATE_NUMBER, NULL, value);
}

cg_status cg_state_dict_set_bool(cg_state_dict *sd, const char *name,
                                 bool value)
{
    return sd_set(sd, name, CG_STATE_BOOL, NULL, value ? 1.0 : 0.0);
}

cg_status cg_state_dict_set_none(cg_state_dict *sd, const char *name)
{
    return sd_set(sd, name, CG_STATE_NONE, NULL, 0.0);
}

cg_status cg_state_dict_remove(cg_state_dict *sd, const char *name)
{
    if (!sd)
        return cg__nn_null("state dict");
    if (!name)
        return cg__nn_null("name");
    int i = cg_state_dict_find(sd, name);
    if (i < 0)
        return cg_error(CG_ERR_INDEX, "'%s'", name);
    cg_free(sd->e[i].name);
    cg_tensor_release(sd->e[i].tensor);
    memmove(&sd->e[i], &sd->e[i + 1], (size_t)(sd->n - i - 1) * sizeof *sd->e);
    sd->n--;
    return CG_OK;
}

/* ======================================================================
 * Module.state_dict()
 * ====================================================================== */

/* "<prefix><name>" in a fresh allocation. */
static char *join(const char *prefix, const char *name)
{
    size_t lp = strlen(prefix), ln = strlen(name);
    char *s = cg_malloc(lp + ln + 1);
    if (!s)
        return NULL;
    memcpy(s, prefix, lp);
    memcpy(s + lp, name, ln + 1);
    return s;
}

/* _save_to_state_dict for m, then each child with "<prefix><child>.".
 * Depth is the nesting depth of the module tree, which is small. */
static cg_status save_module(const cg_module *m, const char *prefix,
                             cg_state_dict *sd)
{
    const cg__module_table *tables[2] = {&m->params, &m->buffers};
    cg_status st;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < tables[k]->n; i++) {
            const cg__module_entry *e = &tables[k]->items[i];
            if (!e->tensor || (k == 1 && !e->persistent))
                continue;
            char *key = join(prefix, e->name);
            if (!key)
                return cg__nn_nomem(strlen(prefix) + strlen(e->name) + 1);
            cg_tensor *d = NULL;
            st = cg_tensor_detach(e->tensor, &d);
            if (st == CG_OK)
                st = cg_state_dict_set_tensor(sd, key, d);
            cg_tensor_release(d);
            cg_free(key);
            if (st != CG_OK)
                return st;
        }
    }
    for (int i = 0; i < m->children.n; i++) {
        const cg__module_entry *e = &m->children.items[i];
        if (!e->module)
            continue;
        char *sub = join(prefix, e->name);
        char *sub_dot = sub ? join(sub, ".") : NULL;
        cg_free(sub);
        if (!sub_dot)
            return cg__nn_nomem(strlen(prefix) + strlen(e->name) + 2);
        st = save_module(e->module, sub_dot, sd);
        cg_free(sub_dot);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

cg_status cg_module_state_dict(const cg_module *m, cg_state_dict **out)
{
    if (!m)
        return cg__nn_null("module");
    if (!out)
        return cg__nn_null("out");
    cg_state_dict *sd = NULL;
    cg_status st = cg_state_dict_new(&sd);
    if (st == CG_OK)
        st = save_module(m, "", sd);
    if (st != CG_OK) {
        cg_state_dict_free(sd);
        return st;
    }
    *out = sd;
    return CG_OK;
}

/* ======================================================================
 * Module.load_state_dict(strict)
 * ====================================================================== */

/* One tensor to write once everything has been checked. */
typedef struct pending_copy {
    cg_tensor *dst; /* borrowed from the module */
    cg_tensor *src; /* owned: contiguous, dst's dtype and shape, and storage
                       of its own when dst is contiguous */
} pending_copy;

typedef struct loader {
    const cg_state_dict *sd;
    cg__strbuf missing, unexpected, errors; /* ", "- and "\n\t"-joined */
    int n_missing, n_unexpected, n_errors;
    pending_copy *copies;
    int n_copies, cap_copies;
} loader;

static void put_list_item(cg__strbuf *sb, int *count, const char *key)
{
    cg__sb_printf(sb, *count ? ", \"%s\"" : "\"%s\"", key);
    (*count)++;
}

static void put_error_sep(loader *L)
{
    if (L->n_errors++)
        cg__sb_puts(&L->errors, "\n\t");
}

/* torch.Size([2, 3]) */
static void put_size(cg__strbuf *sb, const cg_tensor *t)
{
    cg__sb_puts(sb, "torch.Size(");
    cg__sb_list(sb, cg_tensor_shape(t), cg_tensor_dim(t));
    cg__sb_puts(sb, ")");
}

static bool same_shape(const cg_tensor *a, const cg_tensor *b)
{
    int n = cg_tensor_dim(a);
    if (n != cg_tensor_dim(b))
        return false;
    for (int i = 0; i < n; i++)
        if (cg_tensor_shape(a)[i] != cg_tensor_shape(b)[i])
            return false;
    return true;
}

static cg_status add_copy(loader *L, cg_tensor *dst, cg_tensor *src)
{
    if (L->n_copies == L->cap_copies) {
        int cap = L->cap_copies ? 2 * L->cap_copies : 8;
        pending_copy *c = cg_realloc(L->copies, (size_t)cap * sizeof *c);
        if (!c)
            return cg__nn_nomem((size_t)cap * sizeof *c);
        L->copies = c;
        L->cap_copies = cap;
    }
    L->copies[L->n_copies++] = (pending_copy){dst, src};
    return CG_OK;
}

/* The source for dst = input: converted to dst's dtype, contiguous, and in
 * storage of its own (so the commit is a plain memcpy that cannot fail and
 * cannot read what it already wrote). */
static cg_status prepare_source(cg_tensor *dst, cg_tensor *input,
                                cg_tensor **out)
{
    cg_tensor *d = NULL, *c = NULL;
    cg_status st = cg_tensor_detach(input, &d);
    if (st == CG_OK)
        st = cg_tensor_to(d, cg_tensor_dtype(dst), &c);
    cg_tensor_release(d);
    if (st != CG_OK)
        return st;
    if (c == input || cg_tensor_shares_storage(c, input) ||
        !cg_tensor_is_contiguous(c)) {
        /* still a view of the checkpoint's storage, which may be the
         * module's own: take a private copy */
        cg_tensor *k = NULL;
        st = cg_tensor_clone(c, &k);
        cg_tensor_release(c);
        if (st != CG_OK)
            return st;
        c = k;
    }
    *out = c;
    return CG_OK;
}

/* The Python type PyTorch names for a non-tensor checkpoint value. */
static const char *py_type(cg_state_kind kind)
{
    switch (kind) {
    case CG_STATE_BOOL:
        return "<class 'bool'>";
    case CG_STATE_NONE:
        return "<class 'NoneType'>";
    default:
        return "<class 'float'>";
    }
}

/* One local tensor (parameter or persistent buffer) called `key`. */
static cg_status load_entry(loader *L, const char *key, cg_tensor *param)
{
    int i = cg_state_dict_find(L->sd, key);
    if (i < 0) {
        put_list_item(&L->missing, &L->n_missing, key);
        return cg__sb_status(&L->missing);
    }
    const sd_entry *e = &L->sd->e[i];
    if (e->kind != CG_STATE_TENSOR) {
        put_error_sep(L);
        return cg__sb_printf(&L->errors,
                             "While copying the parameter named \"%s\", "
                             "expected torch.Tensor or Tensor-like object "
                             "from checkpoint but received %s",
                             key, py_type(e->kind));
    }
    cg_tensor *input = cg_tensor_retain(e->tensor);
    cg_status st = CG_OK;
    /* backward compatibility: a 0-d parameter takes element 0 of a 1-d
     * checkpoint tensor (input_param[0]) */
    if (cg_tensor_dim(param) == 0 && cg_tensor_dim(input) == 1) {
        if (cg_tensor_shape(input)[0] == 0) {
            cg_tensor_release(input);
            return cg_error(CG_ERR_INDEX,
                            "index 0 is out of bounds for dimension 0 with "
                            "size 0");
        }
        cg_tensor *s = NULL;
        st = cg_tensor_select(input, 0, 0, &s);
        cg_tensor_release(input);
        if (st != CG_OK)
            return st;
        input = s;
    }
    if (!same_shape(input, param)) {
        put_error_sep(L);
        cg__sb_printf(&L->errors,
                      "size mismatch for %s: copying a param with shape ", key);
        put_size(&L->errors, input);
        cg__sb_puts(&L->errors,
                    " from checkpoint, the shape in current model is ");
        put_size(&L->errors, param);
        cg__sb_puts(&L->errors, ".");
        cg_tensor_release(input);
        return cg__sb_status(&L->errors);
    }
    if (cg_dtype_is_complex(cg_tensor_dtype(input)) &&
        !cg_dtype_is_complex(cg_tensor_dtype(param))) {
        /* what cgrad's copy_ raises, reported as PyTorch reports an
         * exception of param.copy_ */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "copy_: cannot copy %s values into a %s tensor (use real() "
                 "or to())",
                 cg_dtype_name(cg_tensor_dtype(input)),
                 cg_dtype_name(cg_tensor_dtype(param)));
        put_error_sep(L);
        cg__sb_printf(&L->errors,
                      "While copying the parameter named \"%s\", whose "
                      "dimensions in the model are ",
                      key);
        put_size(&L->errors, param);
        cg__sb_puts(&L->errors, " and whose dimensions in the checkpoint are ");
        put_size(&L->errors, input);
        cg__sb_puts(&L->errors, ", an exception occurred : (");
        cg__sb_pystr(&L->errors, msg);
        cg__sb_puts(&L->errors, ",).");
        cg_tensor_release(input);
        return cg__sb_status(&L->errors);
    }
    cg_tensor *src = NULL;
    st = prepare_source(param, input, &src);
    cg_tensor_release(input);
    if (st == CG_OK && (st = add_copy(L, param, src)) != CG_OK)
        cg_tensor_release(src);
    return st;
}

/* True when `name` (a NUL-terminated string) equals the first `n` bytes of
 * some entry's name in table t, with a tensor or module present or not as
 * `need_value` says. */
static bool table_has(const cg__module_table *t, const char *name, size_t n,
                      bool need_value, bool persistent_only)
{
    for (int i = 0; i < t->n; i++) {
        const cg__module_entry *e = &t->items[i];
        if (strlen(e->name) != n || memcmp(e->name, name, n) != 0)
            continue;
        if (persistent_only && !e->persistent)
            continue;
        if (need_value && !e->tensor)
            continue;
        return true;
    }
    return false;
}

/* _load_from_state_dict for m, then its children (load() in PyTorch). */
static cg_status load_module(loader *L, cg_module *m, const char *prefix)
{
    cg_status st;
    const cg__module_table *tables[2] = {&m->params, &m->buffers};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < tables[k]->n; i++) {
            const cg__module_entry *e = &tables[k]->items[i];
            if (!e->tensor || (k == 1 && !e->persistent))
                continue;
            char *key = join(prefix, e->name);
            if (!key)
                return cg__nn_nomem(strlen(prefix) + strlen(e->name) + 1);
            st = load_entry(L, key, e->tensor);
            cg_free(key);
            if (st != CG_OK)
                return st;
        }
    }
    /* unexpected keys: under this prefix, whose first component names no
     * child (None or not) and no local tensor */
    size_t lp = strlen(prefix);
    for (int i = 0; i < L->sd->n; i++) {
        const char *key = L->sd->e[i].name;
        if (strncmp(key, prefix, lp) != 0)
            continue;
        const char *rest = key + lp;
        const char *dot = strchr(rest, '.');
        size_t n = dot ? (size_t)(dot - rest) : strlen(rest);
        if (table_has(&m->children, rest, n, false, false) ||
            table_has(&m->params, rest, n, true, false) ||
            table_has(&m->buffers, rest, n, true, true))
            continue;
        put_list_item(&L->unexpected, &L->n_unexpected, key);
    }
    if ((st = cg__sb_status(&L->unexpected)) != CG_OK)
        return st;
    for (int i = 0; i < m->children.n; i++) {
        const cg__module_entry *e = &m->children.items[i];
        if (!e->module)
            continue;
        char *sub = join(prefix, e->name);
        char *sub_dot = sub ? join(sub, ".") : NULL;
        cg_free(sub);
        if (!sub_dot)
            return cg__nn_nomem(lp + strlen(e->name) + 2);
        st = load_module(L, e->module, sub_dot);
        cg_free(sub_dot);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

/* Writes every prepared source into its destination. Cannot fail: each
 * source is contiguous, of dst's dtype and shape, in storage of its own. */
static void commit(loader *L)
{
    bool prev = cg_set_grad_enabled(false);
    for (int i = 0; i < L->n_copies; i++) {
        cg_tensor *dst = L->copies[i].dst, *src = L->copies[i].src;
        if (cg_tensor_is_contiguous(dst)) {
            size_t bytes = (size_t)cg_tensor_numel(dst) *
                           cg_dtype_size(cg_tensor_dtype(dst));
            if (bytes)
                memcpy(cg_tensor_data(dst), cg_tensor_data(src), bytes);
            /* bump the version counter as copy_ does: rewrite element 0
             * with its own value through the in-place setter */
            if (cg_tensor_numel(dst) > 0) {
                int64_t index[CG_MAX_DIMS] = {0};
                double re = 0.0, im = 0.0;
                if (cg_tensor_get(dst, index, &re, &im) == CG_OK)
                    (void)cg_tensor_set(dst, index, re, im);
            }
        } else {
            /* a non-contiguous buffer: copy_ handles the strides */
            (void)cg_tensor_copy_(dst, src);
        }
    }
    cg_set_grad_enabled(prev);
}

cg_status cg_module_load_state_dict(cg_module *m, const cg_state_dict *sd,
                                    bool strict)
{
    if (!m)
        return cg__nn_null("module");
    if (!sd)
        return cg__nn_null("state dict");
    loader L = {.sd = sd,
                .missing = CG__STRBUF_INIT,
                .unexpected = CG__STRBUF_INIT,
                .errors = CG__STRBUF_INIT};
    cg_status st = load_module(&L, m, "");
    if (st == CG_OK) {
        bool fail = L.n_errors > 0 ||
                    (strict && (L.n_missing > 0 || L.n_unexpected > 0));
        if (fail) {
            cg__strbuf msg = CG__STRBUF_INIT;
            cg__sb_printf(&msg, "Error(s) in loading state_dict for %s:",
                          cg_module_type_name(m));
            const char *sep = "\n\t";
            if (strict && L.n_missing) {
                cg__sb_printf(&msg, "%sMissing key(s) in state_dict: %s. ", sep,
                              L.missing.data);
            }
            if (strict && L.n_unexpected) {
                cg__sb_printf(&msg, "%sUnexpected key(s) in state_dict: %s. ",
                              sep, L.unexpected.data);
            }
            if (L.n_errors)
                cg__sb_printf(&msg, "%s%s", sep, L.errors.data);
            st = cg__sb_status(&msg);
            if (st == CG_OK)
                st = cg_error(CG_ERR_RUNTIME, "%s", msg.data);
            cg__sb_free(&msg);
        } else {
            commit(&L);
        }
    }
    for (int i = 0; i < L.n_copies; i++)
        cg_tensor_release(L.copies[i].src);
    cg_free(L.copies);
    cg__sb_free(&L.missing);
    cg__sb_free(&L.unexpected);
    cg__sb_free(&L.errors);
    return st;
}
