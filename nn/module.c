/*
 * module.c -- torch.nn.Module for cgrad: the bookkeeping every layer
 * shares, and the string builder the reprs are made with.
 *
 * Mirrors PyTorch 1.13's nn.Module where a C API can: ordered
 * _parameters / _buffers / _modules tables whose values may be None;
 * named_parameters() in PyTorch's order (the module's own entries, then
 * each child's, depth first, skipping None and tensors or modules already
 * seen); __repr__ with extra_repr() and the children as "(name): repr"
 * lines indented as _addindent does; __getattr__'s lookup order and its
 * "'<Type>' object has no attribute '<name>'" AttributeError.
 *
 * Left out: hooks, buffers' and parameters' name validation beyond what
 * the layers need, methods as attributes (m.forward), apply/to/cuda.
 * Modules are reference counted so one child may sit in two containers.
 * A module tree is used by one thread at a time: even named_parameters()
 * writes, since it caches the flattened list (with its dotted names, which
 * it lends out) until any module's tables change.
 */
#include "module_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* ======================================================================
 * String builder
 * ====================================================================== */

static cg_status sb_reserve(cg__strbuf *sb, size_t extra)
{
    if (sb->failed)
        return CG_ERR_NOMEM;
    if (extra > SIZE_MAX - sb->len - 1)
        goto nomem;
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap)
        return CG_OK;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = cg_realloc(sb->data, cap);
    if (!p)
        goto nomem;
    if (!sb->data)
        p[0] = '\0';
    sb->data = p;
    sb->cap = cap;
    return CG_OK;
nomem:
    sb->failed = true;
    return cg__nn_nomem(extra);
}

cg_status cg__sb_putn(cg__strbuf *sb, const char *s, size_t n)
{
    if (n == 0)
        return cg__sb_status(sb);
    cg_status st = sb_reserve(sb, n);
    if (st != CG_OK)
        return st;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
    return CG_OK;
}

cg_status cg__sb_puts(cg__strbuf *sb, const char *s)
{
    return cg__sb_putn(sb, s, strlen(s));
}

cg_status cg__sb_printf(cg__strbuf *sb, const char *fmt, ...)
{
    if (sb->failed)
        return CG_ERR_NOMEM;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return cg_error(CG_ERR_RUNTIME, "cgrad: bad format in a repr");
    cg_status st = sb_reserve(sb, (size_t)n);
    if (st != CG_OK)
        return st;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return CG_OK;
}

cg_status cg__sb_tensor_repr(cg__strbuf *sb, const cg_tensor *t)
{
    if (sb->failed)
        return CG_ERR_NOMEM;
    size_t n = 0;
    cg_status st = cg_tensor_repr(t, NULL, 0, &n);
    if (st != CG_OK)
        return st;
    if ((st = sb_reserve(sb, n)) != CG_OK)
        return st;
    size_t n2 = 0;
    if ((st = cg_tensor_repr(t, sb->data + sb->len, n + 1, &n2)) != CG_OK) {
        sb->data[sb->len] = '\0';
        return st;
    }
    if (n2 != n) {
        sb->data[sb->len] = '\0';
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad: repr(tensor) changed length between calls");
    }
    sb->len += n;
    return CG_OK;
}

static cg_status sb_ints(cg__strbuf *sb, const int64_t *v, int n, char open,
                         char close, bool tuple)
{
    cg__sb_putn(sb, &open, 1);
    for (int i = 0; i < n; i++)
        cg__sb_printf(sb, i ? ", %lld" : "%lld", (long long)v[i]);
    if (tuple && n == 1)
        cg__sb_puts(sb, ",");
    return cg__sb_putn(sb, &close, 1);
}

cg_status cg__sb_tuple(cg__strbuf *sb, const int64_t *v, int n)
{
    return sb_ints(sb, v, n, '(', ')', true);
}

cg_status cg__sb_list(cg__strbuf *sb, const int64_t *v, int n)
{
    return sb_ints(sb, v, n, '[', ']', false);
}

cg_status cg__sb_pystr(cg__strbuf *sb, const char *s)
{
    /* Python prefers single quotes, and switches to double quotes when the
     * text holds a single quote but no double quote. */
    bool has_single = strchr(s, '\'') != NULL;
    bool has_double = strchr(s, '"') != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    cg__sb_putn(sb, &q, 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\\')
            cg__sb_puts(sb, "\\\\");
        else if (*p == (unsigned char)q)
            cg__sb_printf(sb, "\\%c", q);
        else if (*p == '\n')
            cg__sb_puts(sb, "\\n");
        else if (*p == '\t')
            cg__sb_puts(sb, "\\t");
        else if (*p == '\r')
            cg__sb_puts(sb, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            cg__sb_printf(sb, "\\x%02x", *p);
        else
            cg__sb_putn(sb, (const char *)p, 1);
    }
    return cg__sb_putn(sb, &q, 1);
}

cg_status cg__sb_status(const cg__strbuf *sb)
{
    return sb->failed ? CG_ERR_NOMEM : CG_OK;
}

void cg__sb_copy_out(const cg__strbuf *sb, char *buf, size_t size, size_t *len)
{
    if (len)
        *len = sb->len;
    if (!buf || size == 0)
        return;
    size_t n = sb->len < size - 1 ? sb->len : size - 1;
    if (n)
        memcpy(buf, sb->data, n);
    buf[n] = '\0';
}

void cg__sb_free(cg__strbuf *sb)
{
    cg_free(sb->data);
    *sb = (cg__strbuf)CG__STRBUF_INIT;
}

/* ======================================================================
 * Name tables
 * ====================================================================== */

/* Bumped whenever any module's tables change: a flattened
 * named_parameters() list built at an older epoch is stale. */
static atomic_uint_fast64_t structure_epoch = 1;

static void structure_changed(void)
{
    atomic_fetch_add(&structure_epoch, 1);
}

char *cg__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cg_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int table_find(const cg__module_table *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->items[i].name, name) == 0)
            return i;
    return -1;
}

/* The slot for `name`: the existing entry, or a new one at the end (its
 * name allocated). Nothing changes on failure. */
static cg_status table_slot(cg__module_table *t, const char *name,
                            cg__module_entry **slot, bool *is_new)
{
    int i = table_find(t, name);
    if (i >= 0) {
        *slot = &t->items[i];
        *is_new = false;
        return CG_OK;
    }
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 4;
        cg__module_entry *items =
            cg_realloc(t->items, (size_t)cap * sizeof *items);
        if (!items)
            return cg__nn_nomem((size_t)cap * sizeof *items);
        t->items = items;
        t->cap = cap;
    }
    char *copy = cg__strdup(name);
    if (!copy)
        return cg__nn_nomem(strlen(name) + 1);
    cg__module_entry *e = &t->items[t->n];
    *e = (cg__module_entry){copy, NULL, NULL, true};
    *slot = e;
    *is_new = true;
    return CG_OK;
}

static cg_status check_name(const char *name, const char *what)
{
    if (!name)
        return cg__nn_null("name");
    if (!name[0])
        return cg_error(CG_ERR_MISUSE, "%s name can't be empty string \"\"",
                        what);
    if (strchr(name, '.'))
        return cg_error(CG_ERR_MISUSE, "%s name can't contain \".\"", what);
    return CG_OK;
}

static void table_release(cg__module_table *t)
{
    for (int i = 0; i < t->n; i++) {
        cg_free(t->items[i].name);
        cg_tensor_release(t->items[i].tensor);
    }
    cg_free(t->items);
    *t = (cg__module_table){0, 0, NULL};
}

/* ======================================================================
 * Lifetime
 * ====================================================================== */

cg_status cg__module_alloc(size_t size, const cg__module_vtable *vt,
                           cg_module **out)
{
    if (size < sizeof(cg_module))
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad: a layer must start with its cg_module");
    cg_module *m = cg_calloc(1, size);
    if (!m)
        return cg__nn_nomem(size);
    m->vt = vt;
    m->refs = 1;
    m->training = true;
    *out = m;
    return CG_OK;
}

cg_module *cg__module_retain(cg_module *m)
{
    if (m)
        m->refs++;
    return m;
}

static void flat_clear(cg_module *m)
{
    for (int i = 0; i < m->flat.n; i++)
        cg_free(m->flat.names[i]);
    cg_free(m->flat.names);
    cg_free(m->flat.tensors);
    m->flat.names = NULL;
    m->flat.tensors = NULL;
    m->flat.n = 0;
    m->flat.epoch = 0;
}

/* Frees the tree without recursion: modules whose last reference goes
 * are put on a worklist, and each one freed drops its children's
 * references in turn. */
void cg_module_free(cg_module *m)
{
    if (!m || --m->refs > 0)
        return;
    m->free_next = NULL;
    cg_module *work = m;
    while (work) {
        cg_module *x = work;
        work = x->free_next;
        for (int i = 0; i < x->children.n; i++) {
            cg_module *c = x->children.items[i].module;
            cg_free(x->children.items[i].name);
            if (c && --c->refs == 0) {
                c->free_next = work;
                work = c;
            }
        }
        cg_free(x->children.items);
        table_release(&x->params);
        table_release(&x->buffers);
        flat_clear(x);
        if (x->vt && x->vt->destroy)
            x->vt->destroy(x);
        cg_free(x);
    }
    structure_changed();
}

bool cg__module_is(const cg_module *m, const cg__module_vtable *vt)
{
    return m && m->vt == vt;
}

const char *cg_module_type_name(const cg_module *m)
{
    return m ? m->vt->type_name : NULL;
}

/* ======================================================================
 * Registration
 * ====================================================================== */

static cg_status register_tensor(cg__module_table *t, const char *name,
                                 cg_tensor *value, bool persistent,
                                 const char *what)
{
    cg_status st = check_name(name, what);
    if (st != CG_OK)
        return st;
    cg__module_entry *e;
    bool is_new;
    if ((st = table_slot(t, name, &e, &is_new)) != CG_OK)
        return st;
    cg_tensor *old = e->tensor;
    e->tensor = cg_tensor_retain(value);
    e->persistent = persistent;
    cg_tensor_release(old);
    if (is_new)
        t->n++;
    structure_changed();
    return CG_OK;
}

cg_status cg__module_register_parameter(cg_module *m, const char *name,
                                        cg_tensor *t)
{
    if (!m)
        return cg__nn_null("module");
    return register_tensor(&m->params, name, t, true, "parameter");
}

cg_status cg__module_register_buffer(cg_module *m, const char *name,
                                     cg_tensor *t, bool persistent)
{
    if (!m)
        return cg__nn_null("module");
    return register_tensor(&m->buffers, name, t, persistent, "buffer");
}

cg_status cg__module_register_module(cg_module *m, const char *name,
                                     cg_module *child)
{
    if (!m)
        return cg__nn_null("module");
    cg_status st = check_name(name, "module");
    if (st != CG_OK)
        return st;
    cg__module_entry *e;
    bool is_new;
    if ((st = table_slot(&m->children, name, &e, &is_new)) != CG_OK)
        return st;
    cg_module *old = e->module;
    e->module = cg__module_retain(child);
    if (is_new)
        m->children.n++;
    cg_module_free(old);
    structure_changed();
    return CG_OK;
}

cg_tensor *cg__module_parameter(const cg_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int i = table_find(&m->params, name);
    return i >= 0 ? m->params.items[i].tensor : NULL;
}

void cg__module_train(cg_module *m, bool mode)
{
    if (!m)
        return;
    m->training = mode;
    for (int i = 0; i < m->children.n; i++)
        cg__module_train(m->children.items[i].module, mode);
}

/* ======================================================================
 * named_parameters(): flattened once per structure epoch
 * ====================================================================== */

typedef struct flat_builder {
    int n, cap;
    char **names;
    cg_tensor **tensors;
    int n_seen, cap_seen;
    const cg_module **seen; /* named_modules() memo */
} flat_builder;

static bool seen_tensor(const flat_builder *b, const cg_tensor *t)
{
    for (int i = 0; i < b->n; i++)
        if (b->tensors[i] == t)
            return true;
    return false;
}

static bool seen_module(const flat_builder *b, const cg_module *m)
{
    for (int i = 0; i < b->n_seen; i++)
        if (b->seen[i] == m)
            return true;
    return false;
}

static cg_status flat_add(flat_builder *b, const char *prefix, const char *name,
                          cg_tensor *t)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 8;
        char **names = cg_realloc(b->names, (size_t)cap * sizeof *names);
        if (!names)
            return cg__nn_nomem((size_t)cap * sizeof *names);
        b->names = names;
        cg_tensor **ts = cg_realloc(b->tensors, (size_t)cap * sizeof *ts);
        if (!ts)
            return cg__nn_nomem((size_t)cap * sizeof *ts);
        b->tensors = ts;
        b->cap = cap;
    }
    size_t lp = strlen(prefix), ln = strlen(name);
    char *full = cg_malloc(lp + (lp ? 1 : 0) + ln + 1);
    if (!full)
        return cg__nn_nomem(lp + 1 + ln + 1);
    memcpy(full, prefix, lp);
    if (lp)
        full[lp++] = '.';
    memcpy(full + lp, name, ln + 1);
    b->names[b->n] = full;
    b->tensors[b->n] = t;
    b->n++;
    return CG_OK;
}

/* Depth is the nesting depth of the module tree, which is small. */
static cg_status flat_collect(flat_builder *b, const cg_module *m,
                              const char *prefix)
{
    if (seen_module(b, m))
        return CG_OK;
    if (b->n_seen == b->cap_seen) {
        int cap = b->cap_seen ? 2 * b->cap_seen : 8;
        const cg_module **s = cg_realloc(b->seen, (size_t)cap * sizeof *s);
        if (!s)
            return cg__nn_nomem((size_t)cap * sizeof *s);
        b->seen = s;
        b->cap_seen = cap;
    }
    b->seen[b->n_seen++] = m;
    cg_status st;
    for (int i = 0; i < m->params.n; i++) {
        cg_tensor *t = m->params.items[i].tensor;
        if (!t || seen_tensor(b, t))
            continue;
        if ((st = flat_add(b, prefix, m->params.items[i].name, t)) != CG_OK)
            return st;
    }
    for (int i = 0; i < m->children.n; i++) {
        const cg_module *c = m->children.items[i].module;
        if (!c)
            continue;
        const char *name = m->children.items[i].name;
        size_t lp = strlen(prefix), ln = strlen(name);
        char *sub = cg_malloc(lp + 1 + ln + 1);
        if (!sub)
            return cg__nn_nomem(lp + 1 + ln + 1);
        if (lp)
            snprintf(sub, lp + 1 + ln + 1, "%s.%s", prefix, name);
        else
            memcpy(sub, name, ln + 1);
        st = flat_collect(b, c, sub);
        cg_free(sub);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

/* Brings m->flat up to date (the cache is not part of the module's
 * observable state, hence the const). A name lent out by
 * cg_module_named_parameter stays valid until the list itself changes. */
static cg_status flat_update(const cg_module *cm)
{
    cg_module *m = (cg_module *)cm;
    uint64_t epoch = atomic_load(&structure_epoch);
    if (m->flat.epoch == epoch)
        return CG_OK;
    flat_builder b = {0};
    cg_status st = flat_collect(&b, m, "");
    cg_free(b.seen);
    if (st != CG_OK) {
        for (int i = 0; i < b.n; i++)
            cg_free(b.names[i]);
        cg_free(b.names);
        cg_free(b.tensors);
        return st;
    }
    /* Names already lent out stay valid while this module's own list is
     * unchanged (the epoch also moves for changes elsewhere). */
    bool same = m->flat.epoch != 0 && b.n == m->flat.n;
    for (int i = 0; same && i < b.n; i++)
        same = b.tensors[i] == m->flat.tensors[i] &&
               strcmp(b.names[i], m->flat.names[i]) == 0;
    if (same) {
        for (int i = 0; i < b.n; i++)
            cg_free(b.names[i]);
        cg_free(b.names);
        cg_free(b.tensors);
    } else {
        flat_clear(m);
        m->flat.names = b.names;
        m->flat.tensors = b.tensors;
        m->flat.n = b.n;
    }
    m->flat.epoch = epoch;
    return CG_OK;
}

int cg_module_num_parameters(const cg_module *m)
{
    if (!m)
        return 0;
    if (flat_update(m) != CG_OK)
        return -1;
    return m->flat.n;
}

cg_status cg_module_named_parameter(const cg_module *m, int i,
                                    const char **name, cg_tensor **param)
{
    if (!m)
        return cg__nn_null("module");
    cg_status st = flat_update(m);
    if (st != CG_OK)
        return st;
    if (i < 0 || i >= m->flat.n)
        return cg_error(CG_ERR_INDEX, "list index out of range");
    if (name)
        *name = m->flat.names[i];
    if (param)
        *param = m->flat.tensors[i];
    return CG_OK;
}

cg_status cg_module_zero_grad(cg_module *m, bool set_to_none)
{
    if (!m)
        return cg__nn_null("module");
    cg_status st = flat_update(m);
    if (st != CG_OK)
        return st;
    for (int i = 0; i < m->flat.n; i++)
        if ((st = cg_tensor_zero_grad(m->flat.tensors[i], set_to_none)) !=
            CG_OK)
            return st;
    return CG_OK;
}

cg_status cg_module_requires_grad_(cg_module *m, bool requires_grad)
{
    if (!m)
        return cg__nn_null("module");
    cg_status st = flat_update(m);
    if (st != CG_OK)
        return st;
    for (int i = 0; i < m->flat.n; i++)
        if ((st = cg_tensor_requires_grad_(m->flat.tensors[i],
                                           requires_grad)) != CG_OK)
            return st;
    return CG_OK;
}

/* ======================================================================
 * forward
 * ====================================================================== */

cg_status cg_module_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    if (!m)
        return cg__nn_null("module");
    if (!input)
        return cg__nn_null("input");
    if (!out)
        return cg__nn_null("out");
    if (!m->vt->forward)
        return cg_error(CG_ERR_NOT_IMPLEMENTED,
                        "Module [%s] is missing the required \"forward\" "
                        "function",
                        m->vt->type_name);
    return m->vt->forward(m, input, out);
}

/* ======================================================================
 * __repr__
 * ====================================================================== */

/* _addindent(s, 2) appended to sb: every line but the first gets two
 * more spaces in front. */
static void put_indented(cg__strbuf *sb, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        cg__sb_putn(sb, s + start, i + 1 - start);
        cg__sb_puts(sb, "  ");
        start = i + 1;
    }
    cg__sb_putn(sb, s + start, n - start);
}

static cg_status module_repr(const cg_module *m, cg__strbuf *sb)
{
    cg__strbuf extra = CG__STRBUF_INIT;
    cg_status st = CG_OK;
    if (m->vt->extra_repr && (st = m->vt->extra_repr(m, &extra)) != CG_OK)
        goto done;
    bool one_line = !memchr(extra.data ? extra.data : "", '\n', extra.len);
    cg__sb_puts(sb, m->vt->type_name);
    cg__sb_puts(sb, "(");
    if (m->children.n == 0) {
        /* a one-line extra_repr goes inside the parentheses */
        if (one_line) {
            cg__sb_putn(sb, extra.data ? extra.data : "", extra.len);
        } else {
            cg__sb_puts(sb, "\n  ");
            put_indented(sb, extra.data, extra.len);
            cg__sb_puts(sb, "\n");
        }
    } else {
        /* lines = extra_repr's lines + "(name): repr" per child, each
         * preceded by "\n  " */
        if (extra.len) {
            cg__sb_puts(sb, "\n  ");
            put_indented(sb, extra.data, extra.len);
        }
        for (int i = 0; i < m->children.n; i++) {
            const cg__module_entry *e = &m->children.items[i];
            cg__sb_printf(sb, "\n  (%s): ", e->name);
            if (!e->module) {
                cg__sb_puts(sb, "None");
                continue;
            }
            cg__strbuf child = CG__STRBUF_INIT;
            st = module_repr(e->module, &child);
            if (st == CG_OK)
                put_indented(sb, child.data, child.len);
            cg__sb_free(&child);
            if (st != CG_OK)
                goto done;
        }
        cg__sb_puts(sb, "\n");
    }
    st = cg__sb_puts(sb, ")");
done:
    cg__sb_free(&extra);
    return st != CG_OK ? st : cg__sb_status(sb);
}

cg_status cg_module_repr(const cg_module *m, char *buf, size_t size,
                         size_t *len)
{
    if (!m)
        return cg__nn_null("module");
    if (!buf && size)
        return cg__nn_null("buf");
    cg__strbuf sb = CG__STRBUF_INIT;
    cg_status st = module_repr(m, &sb);
    if (st == CG_OK)
        cg__sb_copy_out(&sb, buf, size, len);
    cg__sb_free(&sb);
    return st;
}

cg_status cg_module_print(const cg_module *m, FILE *f)
{
    if (!m)
        return cg__nn_null("module");
    if (!f)
        return cg__nn_null("file");
    cg__strbuf sb = CG__STRBUF_INIT;
    cg_status st = module_repr(m, &sb);
    if (st == CG_OK) {
        cg__sb_puts(&sb, "\n");
        st = cg__sb_status(&sb);
    }
    if (st == CG_OK && fwrite(sb.data, 1, sb.len, f) != sb.len)
        st = cg_error(CG_ERR_IO, "could not write the module's repr");
    cg__sb_free(&sb);
    return st;
}

/* ======================================================================
 * __getattr__
 * ====================================================================== */

/* Python's lookup: the instance's own attributes first (the layer's, and
 * the base's `training`), then _parameters, _buffers and _modules (a None
 * value reads as None), else AttributeError. */
static cg_status module_getattr(const cg_module *m, const char *name,
                                cg__strbuf *sb)
{
    bool found = false;
    cg_status st;
    if (m->vt->getattr && (st = m->vt->getattr(m, name, sb, &found)) != CG_OK)
        return st;
    if (found)
        return cg__sb_status(sb);
    if (strcmp(name, "training") == 0)
        return cg__sb_puts(sb, m->training ? "True" : "False");
    const cg__module_table *tables[2] = {&m->params, &m->buffers};
    for (int k = 0; k < 2; k++) {
        int i = table_find(tables[k], name);
        if (i < 0)
            continue;
        const cg_tensor *t = tables[k]->items[i].tensor;
        return t ? cg__sb_tensor_repr(sb, t) : cg__sb_puts(sb, "None");
    }
    int i = table_find(&m->children, name);
    if (i >= 0) {
        const cg_module *c = m->children.items[i].module;
        return c ? module_repr(c, sb) : cg__sb_puts(sb, "None");
    }
    return cg_error(CG_ERR_ATTRIBUTE, "'%s' object has no attribute '%s'",
                    m->vt->type_name, name);
}

cg_status cg_module_getattr(const cg_module *m, const char *name, char *buf,
                            size_t size, size_t *len)
{
    if (!m)
        return cg__nn_null("module");
    if (!name)
        return cg__nn_null("name");
    if (!buf && size)
        return cg__nn_null("buf");
    cg__strbuf sb = CG__STRBUF_INIT;
    cg_status st = module_getattr(m, name, &sb);
    if (st == CG_OK)
        st = cg__sb_status(&sb);
    if (st == CG_OK)
        cg__sb_copy_out(&sb, buf, size, len);
    cg__sb_free(&sb);
    return st;
}

/* ======================================================================
 * issue 7 (layers helper): the module tree in the public API,
 * user-defined modules, Python's float repr
 * ====================================================================== */

cg_status cg_module_train(cg_module *m, bool mode)
{
    if (!m)
        return cg__nn_null("module");
    cg__module_train(m, mode);
    return CG_OK;
}

cg_status cg_module_eval(cg_module *m)
{
    return cg_module_train(m, false);
}

bool cg_module_is_training(const cg_module *m)
{
    return m && m->training;
}

int cg_module_num_children(const cg_module *m)
{
    return m ? m->children.n : 0;
}

cg_status cg_module_named_child(const cg_module *m, int i, const char **name,
                                cg_module **child)
{
    if (!m)
        return cg__nn_null("module");
    if (i < 0 || i >= m->children.n)
        return cg_error(CG_ERR_INDEX, "list index out of range");
    if (name)
        *name = m->children.items[i].name;
    if (child)
        *child = m->children.items[i].module;
    return CG_OK;
}

/* True when `target` is `root` or lies in root's subtree. The tree is a
 * DAG (no module contains itself, which this check keeps so), so a plain
 * depth-first walk ends; its depth is the nesting depth. */
static bool subtree_contains(const cg_module *root, const cg_module *target)
{
    if (root == target)
        return true;
    for (int i = 0; i < root->children.n; i++) {
        const cg_module *c = root->children.items[i].module;
        if (c && subtree_contains(c, target))
            return true;
    }
    return false;
}

cg_status cg__module_add_child(cg_module *m, const char *name, cg_module *child)
{
    if (!m)
        return cg__nn_null("module");
    if (child && subtree_contains(child, m))
        return cg_error(CG_ERR_VALUE, "cgrad: a module cannot contain itself");
    return cg__module_register_module(m, name, child);
}

cg_status cg_module_register_module(cg_module *m, const char *name,
                                    cg_module *child)
{
    return cg__module_add_child(m, name, child);
}

cg_status cg_module_register_parameter(cg_module *m, const char *name,
                                       cg_tensor *t)
{
    if (!m)
        return cg__nn_null("module");
    cg_status st = check_name(name, "parameter");
    if (st != CG_OK)
        return st;
    if (t && !cg_tensor_is_leaf(t))
        return cg_error(CG_ERR_VALUE,
                        "Cannot assign non-leaf Tensor to parameter '%s'. "
                        "Model parameters must be created explicitly. To "
                        "express '%s' as a function of another Tensor, "
                        "compute the value in the forward() method.",
                        name, name);
    if (t) {
        bool was_param = cg_tensor_is_parameter(t);
        bool was_rg = cg_tensor_requires_grad(t);
        if ((st = cg_tensor_requires_grad_(t, true)) != CG_OK ||
            (st = cg_tensor_set_parameter(t, true)) != CG_OK ||
            (st = cg__module_register_parameter(m, name, t)) != CG_OK) {
            cg_tensor_set_parameter(t, was_param);
            cg_tensor_requires_grad_(t, was_rg);
            return st;
        }
        return CG_OK;
    }
    return cg__module_register_parameter(m, name, NULL);
}

cg_status cg_module_register_buffer(cg_module *m, const char *name,
                                    cg_tensor *t, bool persistent)
{
    return cg__module_register_buffer(m, name, t, persistent);
}

cg_tensor *cg_module_get_parameter(const cg_module *m, const char *name)
{
    return cg__module_parameter(m, name);
}

cg_tensor *cg_module_get_buffer(const cg_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int i = table_find(&m->buffers, name);
    return i >= 0 ? m->buffers.items[i].tensor : NULL;
}

cg_module *cg_module_get_child(const cg_module *m, const char *name)
{
    if (!m || !name)
        return NULL;
    int i = table_find(&m->children, name);
    return i >= 0 ? m->children.items[i].module : NULL;
}

/* ---- user-defined modules ------------------------------------------- */

/* A user's module: the base, a vtable of its own (carrying the user's
 * class name) whose entries call the user's functions, and the state. */
typedef struct custom_module {
    cg_module base;
    cg__module_vtable vt;
    const cg_module_type *type;
    void *state;
} custom_module;

static cg_status custom_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    custom_module *c = (custom_module *)m;
    return c->type->forward(m, input, out);
}

static cg_status custom_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const custom_module *c = (const custom_module *)m;
    size_t len = 0;
    cg_status st = c->type->extra_repr(m, NULL, 0, &len);
    if (st != CG_OK)
        return st;
    char *buf = cg_malloc(len + 1);
    if (!buf)
        return cg__nn_nomem(len + 1);
    size_t len2 = 0;
    st = c->type->extra_repr(m, buf, len + 1, &len2);
    if (st == CG_OK && len2 != len)
        st = cg_error(CG_ERR_RUNTIME,
                      "cgrad: extra_repr of '%s' changed length between calls",
                      c->type->type_name);
    if (st == CG_OK)
        st = cg__sb_putn(sb, buf, len);
    cg_free(buf);
    return st;
}

static void custom_destroy(cg_module *m)
{
    custom_module *c = (custom_module *)m;
    if (c->type->destroy)
        c->type->destroy(c->state);
}

cg_status cg_module_new_custom(const cg_module_type *type, void *state,
                               cg_module **out)
{
    cg_status st = CG_OK;
    if (!type)
        st = cg__nn_null("type");
    else if (!type->type_name)
        st = cg__nn_null("type_name");
    else if (!out)
        st = cg__nn_null("out");
    cg_module *m = NULL;
    if (st == CG_OK)
        st = cg__module_alloc(sizeof(custom_module), NULL, &m);
    if (st != CG_OK) {
        if (type && type->destroy)
            type->destroy(state);
        return st;
    }
    custom_module *c = (custom_module *)m;
    c->vt = (cg__module_vtable){
        .type_name = type->type_name,
        .forward = type->forward ? custom_forward : NULL,
        .extra_repr = type->extra_repr ? custom_extra_repr : NULL,
        .getattr = NULL,
        .destroy = custom_destroy,
    };
    c->type = type;
    c->state = state;
    m->vt = &c->vt;
    *out = m;
    return CG_OK;
}

void *cg_module_state(const cg_module *m)
{
    if (!m || m->vt->destroy != custom_destroy)
        return NULL;
    return ((const custom_module *)m)->state;
}

/* ---- Python's repr(float) --------------------------------------------- */

cg_status cg__sb_pyfloat(cg__strbuf *sb, double v)
{
    char buf[48];
    cg_format_float(v, buf, sizeof buf);
    return cg__sb_puts(sb, buf);
}
