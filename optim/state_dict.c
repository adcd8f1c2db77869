/*
 * state_dict.c -- an ordered list of named tensors and scalars: PyTorch's
 * nested state_dict (optimizer state, param_groups) flattened with dotted
 * names, so a checkpoint writer can put the tensors in a safetensors file
 * and the scalars in its metadata. Insertion order is kept, as Python
 * dicts keep it; replacing a name keeps its position.
 */
#include "optim_internal.h"

#include <string.h>

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
        return cg__optim_null("out");
    cg_state_dict *sd = cg_calloc(1, sizeof *sd);
    if (!sd)
        return cg__optim_nomem(sizeof *sd);
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

cg_status cg_state_dict_entry(const cg_state_dict *sd, int i,
                              const char **name, cg_state_kind *kind,
                              cg_tensor **tensor, double *number)
{
    if (!sd)
        return cg__optim_null("state dict");
    cg_status st = cg__optim_check_index(i, sd->n);
    if (st != CG_OK)
        return st;
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
static cg_status sd_set(cg_state_dict *sd, const char *name,
                        cg_state_kind kind, cg_tensor *t, double number)
{
    if (!sd)
        return cg__optim_null("state dict");
    if (!name)
        return cg__optim_null("name");
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
            return cg__optim_nomem((size_t)cap * sizeof *e);
        sd->e = e;
        sd->cap = cap;
    }
    size_t len = strlen(name) + 1;
    char *copy = cg_malloc(len);
    if (!copy)
        return cg__optim_nomem(len);
    memcpy(copy, name, len);
    sd->e[sd->n++] = (sd_entry){copy, kind, t ? cg_tensor_retain(t) : NULL,
                                number};
    return CG_OK;
}

cg_status cg_state_dict_set_tensor(cg_state_dict *sd, const char *name,
                                   cg_tensor *t)
{
    if (!t)
        return cg__optim_null("tensor");
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
        return cg__optim_null("state dict");
    if (!name)
        return cg__optim_null("name");
    int i = cg_state_dict_find(sd, name);
    if (i < 0)
        return cg__optim_key_error(name);
    cg_free(sd->e[i].name);
    cg_tensor_release(sd->e[i].tensor);
    memmove(&sd->e[i], &sd->e[i + 1], (size_t)(sd->n - i - 1) * sizeof *sd->e);
    sd->n--;
    return CG_OK;
}
