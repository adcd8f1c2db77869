/*
 * loss.c -- the loss modules of torch.nn (PyTorch 1.13): MSELoss, L1Loss,
 * CrossEntropyLoss and BCEWithLogitsLoss, thin modules over the functional
 * losses of core/loss.c.
 *
 * As in torch/nn/modules/loss.py: _Loss stores `reduction` as given (a bad
 * string is only an error when forward runs, with the functional's
 * message); _WeightedLoss registers `weight` as a buffer (None allowed),
 * BCEWithLogitsLoss also `pos_weight`; CrossEntropyLoss keeps ignore_index
 * and label_smoothing. The modules have no extra_repr, so they print as
 * "MSELoss()". A loss's forward takes (input, target): call it with
 * cg_loss_forward. cg_module_forward (one argument) fails as calling
 * loss(input) does in Python: TypeError "MSELoss.forward() missing 1
 * required positional argument: 'target'".
 *
 * The buffers are read at forward time, so a weight replaced by
 * load_state_dict or cg_module_register_buffer is the one used, as in
 * PyTorch. Left out: the legacy size_average / reduce arguments.
 */
#include "module_internal.h"

#include <string.h>

typedef enum loss_kind { LOSS_MSE, LOSS_L1, LOSS_CE, LOSS_BCE } loss_kind;

typedef struct loss_module {
    cg_module base;
    loss_kind kind;
    char *reduction;        /* owned copy, as given */
    int64_t ignore_index;   /* CrossEntropyLoss */
    double label_smoothing; /* CrossEntropyLoss */
} loss_module;

static cg_status missing_target(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    (void)input;
    (void)out;
    return cg_error(CG_ERR_TYPE,
                    "%s.forward() missing 1 required positional argument: "
                    "'target'",
                    m->vt->type_name);
}

static cg_status loss_getattr(const cg_module *m, const char *name,
                              cg__strbuf *sb, bool *found)
{
    const loss_module *l = (const loss_module *)m;
    *found = true;
    if (strcmp(name, "reduction") == 0)
        return cg__sb_pystr(sb, l->reduction);
    if (l->kind == LOSS_CE && strcmp(name, "ignore_index") == 0)
        return cg__sb_printf(sb, "%lld", (long long)l->ignore_index);
    if (l->kind == LOSS_CE && strcmp(name, "label_smoothing") == 0)
        return cg__sb_pyfloat(sb, l->label_smoothing);
    *found = false;
    return CG_OK;
}

static void loss_destroy(cg_module *m)
{
    cg_free(((loss_module *)m)->reduction);
}

static const cg__module_vtable mse_vt = {"MSELoss", missing_target, NULL,
                                         loss_getattr, loss_destroy};
static const cg__module_vtable l1_vt = {"L1Loss", missing_target, NULL,
                                        loss_getattr, loss_destroy};
static const cg__module_vtable ce_vt = {"CrossEntropyLoss", missing_target,
                                        NULL, loss_getattr, loss_destroy};
static const cg__module_vtable bce_vt = {"BCEWithLogitsLoss", missing_target,
                                         NULL, loss_getattr, loss_destroy};

/* _Loss.__init__ (and the buffers of _WeightedLoss / BCEWithLogitsLoss:
 * names[i] gets bufs[i], NULL for None). */
static cg_status loss_new(loss_kind kind, const cg__module_vtable *vt,
                          const char *reduction, const char *const *names,
                          cg_tensor *const *bufs, int nbufs, loss_module **out)
{
    char *red = cg__strdup(reduction ? reduction : "mean");
    if (!red)
        return cg__nn_nomem(strlen(reduction ? reduction : "mean") + 1);
    cg_module *m = NULL;
    cg_status st = cg__module_alloc(sizeof(loss_module), vt, &m);
    if (st != CG_OK) {
        cg_free(red);
        return st;
    }
    loss_module *l = (loss_module *)m;
    l->kind = kind;
    l->reduction = red;
    for (int i = 0; i < nbufs; i++)
        if ((st = cg__module_register_buffer(m, names[i], bufs[i], true)) !=
            CG_OK) {
            cg_module_free(m);
            return st;
        }
    *out = l;
    return CG_OK;
}

cg_status cg_mse_loss_new(const char *reduction, cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    loss_module *l = NULL;
    cg_status st = loss_new(LOSS_MSE, &mse_vt, reduction, NULL, NULL, 0, &l);
    if (st == CG_OK)
        *out = &l->base;
    return st;
}

cg_status cg_l1_loss_new(const char *reduction, cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    loss_module *l = NULL;
    cg_status st = loss_new(LOSS_L1, &l1_vt, reduction, NULL, NULL, 0, &l);
    if (st == CG_OK)
        *out = &l->base;
    return st;
}

cg_cross_entropy_loss_opts cg_cross_entropy_loss_options(void)
{
    return (cg_cross_entropy_loss_opts){.weight = NULL,
                                        .ignore_index = -100,
                                        .reduction = "mean",
                                        .label_smoothing = 0.0};
}

cg_status cg_cross_entropy_loss_new(const cg_cross_entropy_loss_opts *opts,
                                    cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    static const char *const names[] = {"weight"};
    cg_tensor *bufs[] = {opts->weight};
    loss_module *l = NULL;
    cg_status st =
        loss_new(LOSS_CE, &ce_vt, opts->reduction, names, bufs, 1, &l);
    if (st != CG_OK)
        return st;
    l->ignore_index = opts->ignore_index;
    l->label_smoothing = opts->label_smoothing;
    *out = &l->base;
    return CG_OK;
}

cg_bce_with_logits_loss_opts cg_bce_with_logits_loss_options(void)
{
    return (cg_bce_with_logits_loss_opts){
        .weight = NULL, .reduction = "mean", .pos_weight = NULL};
}

cg_status cg_bce_with_logits_loss_new(const cg_bce_with_logits_loss_opts *opts,
                                      cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    static const char *const names[] = {"weight", "pos_weight"};
    cg_tensor *bufs[] = {opts->weight, opts->pos_weight};
    loss_module *l = NULL;
    cg_status st =
        loss_new(LOSS_BCE, &bce_vt, opts->reduction, names, bufs, 2, &l);
    if (st == CG_OK)
        *out = &l->base;
    return st;
}

static bool is_loss(const cg_module *m)
{
    return cg__module_is(m, &mse_vt) || cg__module_is(m, &l1_vt) ||
           cg__module_is(m, &ce_vt) || cg__module_is(m, &bce_vt);
}

cg_status cg_loss_forward(cg_module *m, cg_tensor *input, cg_tensor *target,
                          cg_tensor **out)
{
    if (!m)
        return cg__nn_null("module");
    if (!input)
        return cg__nn_null("input");
    if (!target)
        return cg__nn_null("target");
    if (!out)
        return cg__nn_null("out");
    if (!is_loss(m))
        return cg_error(CG_ERR_TYPE,
                        "%s.forward() takes 2 positional arguments but 3 "
                        "were given",
                        cg_module_type_name(m));
    const loss_module *l = (const loss_module *)m;
    switch (l->kind) {
    case LOSS_MSE:
        return cg_mse_loss(input, target, l->reduction, out);
    case LOSS_L1:
        return cg_l1_loss(input, target, l->reduction, out);
    case LOSS_CE:
        return cg_cross_entropy(
            input, target, cg_module_get_buffer(m, "weight"), l->ignore_index,
            l->reduction, l->label_smoothing, out);
    case LOSS_BCE:
        return cg_binary_cross_entropy_with_logits(
            input, target, cg_module_get_buffer(m, "weight"),
            cg_module_get_buffer(m, "pos_weight"), l->reduction, out);
    }
    return cg_error(CG_ERR_RUNTIME, "internal error: unknown loss kind");
}
