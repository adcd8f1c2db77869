/* test_autograd_hooks.c -- post-accumulate-grad hooks (PyTorch
 * 2.1's Tensor.register_post_accumulate_grad_hook): when they run (as soon
 * as the leaf's last gradient arrived, before the rest of backward), what
 * they see (the accumulated .grad), their order, removal, errors that
 * abort backward with their message, the registration errors word for
 * word, and that handles free everything.
 *
 * The graphs are small float64 expressions whose gradients are exact:
 *   x = [1, 2, 3], w1 = [0.5, -1, 2], w2 = [4, 0.25, -3]
 *   loss = ((w1 * x) * w2).sum()
 *   d loss/d w1 = x * w2 = [4, 0.5, -9], d loss/d w2 = w1 * x = [0.5, -2, 6]
 * The engine runs MulBackward0 of the outer product first, which
 * delivers w2's only gradient, so w2's hooks run before the inner
 * MulBackward0 delivers w1's. */
#include "testutil.h"

#include <string.h>

static const double X[3] = {1, 2, 3}, W1[3] = {0.5, -1, 2},
                    W2[3] = {4, 0.25, -3};
static const double GW1[3] = {4, 0.5, -9}, GW2[3] = {0.5, -2, 6};

static cg_tensor *vec(const double *v, bool requires_grad)
{
    int64_t shape[1] = {3};
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(v, shape, 1, CG_FLOAT64, &t));
    if (requires_grad)
        tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

/* loss = ((w1 * x) * w2).sum() */
static cg_tensor *make_loss(cg_tensor *x, cg_tensor *w1, cg_tensor *w2)
{
    cg_tensor *a = NULL, *b = NULL, *loss = NULL;
    tu_ok(cg_mul(w1, x, &a));
    tu_ok(cg_mul(a, w2, &b));
    tu_ok(cg_sum(b, &loss));
    cg_tensor_release(a);
    cg_tensor_release(b);
    return loss;
}

static void assert_values(const cg_tensor *t, const double *want, double k)
{
    ck_assert_ptr_nonnull(t);
    const double *d = cg_tensor_data(t);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(d[i] == k * want[i], "element %d: %g, want %g", i, d[i],
                      k * want[i]);
}

/* ---- a hook that records what it saw ------------------------------------ */

typedef struct seen {
    char log[256];      /* "w2:a w2:b w1:a " ... */
    cg_tensor *w1, *w2; /* borrowed, to look at their .grad */
    double w1_grad0;    /* w1.grad[0] when the hook ran (NAN: None) */
    double grad0;       /* the hooked leaf's .grad[0] when the hook ran */
    int calls;
    cg_hook_handle *self; /* for the self-removing hook */
    bool fail;
} seen;

typedef struct tag {
    seen *s;
    const char *name;
} tag;

static cg_status record(cg_tensor *param, void *ctx)
{
    tag *t = ctx;
    seen *s = t->s;
    s->calls++;
    strncat(s->log, t->name, sizeof s->log - strlen(s->log) - 1);
    strncat(s->log, " ", sizeof s->log - strlen(s->log) - 1);
    ck_assert(!cg_is_grad_enabled()); /* hooks run under no_grad */
    cg_tensor *g = cg_tensor_grad(param);
    ck_assert_ptr_nonnull(g);
    s->grad0 = ((const double *)cg_tensor_data(g))[0];
    cg_tensor *g1 = cg_tensor_grad(s->w1);
    s->w1_grad0 = g1 ? ((const double *)cg_tensor_data(g1))[0] : -1e300;
    if (s->fail)
        return cg_error(CG_ERR_VALUE, "hook %s failed on purpose", t->name);
    return CG_OK;
}

START_TEST(test_hook_runs_during_backward_in_engine_order)
{
    cg_tensor *x = vec(X, false), *w1 = vec(W1, true), *w2 = vec(W2, true);
    seen s = {.w1 = w1, .w2 = w2};
    tag t1 = {&s, "w1"}, t2a = {&s, "w2:a"}, t2b = {&s, "w2:b"};
    cg_hook_handle *h1 = NULL, *h2a = NULL, *h2b = NULL;
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w1, record, &t1, &h1));
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w2, record, &t2a, &h2a));
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w2, record, &t2b, &h2b));
    cg_tensor *loss = make_loss(x, w1, w2);
    tu_ok(cg_tensor_backward(loss, NULL, false));
    /* w2's two hooks in registration order, then w1's */
    ck_assert_str_eq(s.log, "w2:a w2:b w1 ");
    ck_assert_int_eq(s.calls, 3);
    /* w1's hook (the last) saw its own grad and w1's grad written */
    ck_assert(s.grad0 == GW1[0]);
    ck_assert(s.w1_grad0 == GW1[0]);
    assert_values(cg_tensor_grad(w1), GW1, 1);
    assert_values(cg_tensor_grad(w2), GW2, 1);
    cg_tensor_release(loss);

    /* second backward: .grad accumulates, the hooks see the sum */
    s.log[0] = 0;
    loss = make_loss(x, w1, w2);
    tu_ok(cg_tensor_backward(loss, NULL, false));
    ck_assert_str_eq(s.log, "w2:a w2:b w1 ");
    ck_assert(s.grad0 == 2 * GW1[0]);
    assert_values(cg_tensor_grad(w1), GW1, 2);
    assert_values(cg_tensor_grad(w2), GW2, 2);
    cg_tensor_release(loss);

    /* removal: w2:a is gone, the others stay in order */
    cg_hook_handle_remove(h2a);
    s.log[0] = 0;
    loss = make_loss(x, w1, w2);
    tu_ok(cg_tensor_backward(loss, NULL, false));
    ck_assert_str_eq(s.log, "w2:b w1 ");
    cg_tensor_release(loss);
    cg_hook_handle_remove(h1);
    cg_hook_handle_remove(h2b);
    cg_hook_handle_remove(NULL);
    cg_tensor_release(x);
    cg_tensor_release(w1);
    cg_tensor_release(w2);
}
END_TEST

/* When w2's hook runs, w1's gradient has not been computed yet: the hook
 * runs in the middle of backward (what DDP needs to overlap). */
START_TEST(test_hook_runs_before_rest_of_backward)
{
    cg_tensor *x = vec(X, false), *w1 = vec(W1, true), *w2 = vec(W2, true);
    seen s = {.w1 = w1, .w2 = w2};
    tag t2 = {&s, "w2"};
    cg_hook_handle *h = NULL;
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w2, record, &t2, &h));
    cg_tensor *loss = make_loss(x, w1, w2);
    tu_ok(cg_tensor_backward(loss, NULL, false));
    ck_assert_int_eq(s.calls, 1);
    ck_assert(s.grad0 == GW2[0]);
    ck_assert(s.w1_grad0 == -1e300); /* w1.grad was still None */
    assert_values(cg_tensor_grad(w1), GW1, 1);
    cg_hook_handle_remove(h);
    cg_tensor_release(loss);
    cg_tensor_release(x);
    cg_tensor_release(w1);
    cg_tensor_release(w2);
}
END_TEST

/* A leaf used twice gets one call, with both contributions summed; a
 * backward from the leaf itself also runs its hooks. */
START_TEST(test_hook_once_per_leaf_and_on_leaf_root)
{
    cg_tensor *w1 = vec(W1, true), *w2 = vec(W2, true);
    seen s = {.w1 = w1, .w2 = w2};
    tag t1 = {&s, "w1"};
    cg_hook_handle *h = NULL;
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w1, record, &t1, &h));
    /* loss = (w1 * w1).sum(): d/dw1 = 2 w1 */
    cg_tensor *sq = NULL, *loss = NULL;
    tu_ok(cg_mul(w1, w1, &sq));
    tu_ok(cg_sum(sq, &loss));
    tu_ok(cg_tensor_backward(loss, NULL, false));
    ck_assert_int_eq(s.calls, 1);
    ck_assert(s.grad0 == 2 * W1[0]);
    assert_values(cg_tensor_grad(w1), W1, 2);
    /* w1.backward(gradient=ones): the root is w1's AccumulateGrad */
    cg_tensor *ones = NULL;
    int64_t shape[1] = {3};
    tu_ok(cg_ones(shape, 1, CG_FLOAT64, &ones));
    tu_ok(cg_tensor_backward(w1, ones, false));
    ck_assert_int_eq(s.calls, 2);
    ck_assert(s.grad0 == 2 * W1[0] + 1);
    cg_hook_handle_remove(h);
    cg_tensor_release(ones);
    cg_tensor_release(sq);
    cg_tensor_release(loss);
    cg_tensor_release(w1);
    cg_tensor_release(w2);
}
END_TEST

/* A hook that fails aborts backward: its status and message come back,
 * later hooks do not run, leaves without hooks keep their old .grad. */
START_TEST(test_hook_error_aborts_backward)
{
    cg_tensor *x = vec(X, false), *w1 = vec(W1, true), *w2 = vec(W2, true);
    seen s = {.w1 = w1, .w2 = w2, .fail = true};
    tag t2 = {&s, "w2"};
    cg_hook_handle *h = NULL;
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w2, record, &t2, &h));
    cg_tensor *loss = make_loss(x, w1, w2);
    tu_fails(cg_tensor_backward(loss, NULL, false), CG_ERR_VALUE,
             "hook w2 failed on purpose");
    ck_assert_int_eq(s.calls, 1);
    ck_assert_ptr_null(cg_tensor_grad(w1));    /* not reached: unchanged */
    assert_values(cg_tensor_grad(w2), GW2, 1); /* written before the hook */
    /* the graph was kept (nothing freed): a second try works */
    s.fail = false;
    tu_ok(cg_tensor_backward(loss, NULL, false));
    assert_values(cg_tensor_grad(w1), GW1, 1);
    assert_values(cg_tensor_grad(w2), GW2, 2);
    cg_hook_handle_remove(h);
    cg_tensor_release(loss);
    cg_tensor_release(x);
    cg_tensor_release(w1);
    cg_tensor_release(w2);
}
END_TEST

static cg_status remove_self(cg_tensor *param, void *ctx)
{
    (void)param;
    seen *s = ctx;
    s->calls++;
    cg_hook_handle_remove(s->self);
    s->self = NULL;
    return CG_OK;
}

START_TEST(test_hook_may_remove_itself)
{
    cg_tensor *x = vec(X, false), *w1 = vec(W1, true), *w2 = vec(W2, true);
    seen s = {0};
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w1, remove_self, &s,
                                                       &s.self));
    for (int i = 0; i < 2; i++) {
        cg_tensor *loss = make_loss(x, w1, w2);
        tu_ok(cg_tensor_backward(loss, NULL, false));
        cg_tensor_release(loss);
    }
    ck_assert_int_eq(s.calls, 1);
    ck_assert_ptr_null(s.self);
    assert_values(cg_tensor_grad(w1), GW1, 2);
    cg_tensor_release(x);
    cg_tensor_release(w1);
    cg_tensor_release(w2);
}
END_TEST

static cg_status nop(cg_tensor *param, void *ctx)
{
    (void)param;
    (void)ctx;
    return CG_OK;
}

START_TEST(test_register_errors)
{
    cg_tensor *x = vec(X, false), *w1 = vec(W1, true), *y = NULL;
    cg_hook_handle *h = (cg_hook_handle *)&h; /* must stay untouched */
    tu_fails(cg_tensor_register_post_accumulate_grad_hook(x, nop, NULL, &h),
             CG_ERR_RUNTIME,
             "cannot register a hook on a tensor that doesn't require "
             "gradient");
    tu_ok(cg_mul(w1, x, &y));
    tu_fails(cg_tensor_register_post_accumulate_grad_hook(y, nop, NULL, &h),
             CG_ERR_RUNTIME,
             "post accumulate grad hooks cannot be registered on non-leaf "
             "tensors");
    ck_assert_int_eq(
        cg_tensor_register_post_accumulate_grad_hook(NULL, nop, NULL, &h),
        CG_ERR_MISUSE);
    ck_assert_int_eq(
        cg_tensor_register_post_accumulate_grad_hook(w1, NULL, NULL, &h),
        CG_ERR_MISUSE);
    ck_assert_int_eq(
        cg_tensor_register_post_accumulate_grad_hook(w1, nop, NULL, NULL),
        CG_ERR_MISUSE);
    ck_assert_ptr_eq(h, (cg_hook_handle *)&h);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_tensor_release(w1);
}
END_TEST

/* The handle keeps the leaf alive; removing it frees everything. */
START_TEST(test_handle_owns_leaf_no_leak)
{
    tu_alloc_begin(0);
    cg_tensor *w1 = vec(W1, true), *x = vec(X, false);
    cg_hook_handle *h = NULL;
    seen s = {.w1 = w1};
    tag t = {&s, "w1"};
    tu_ok(cg_tensor_register_post_accumulate_grad_hook(w1, record, &t, &h));
    cg_tensor *y = NULL, *loss = NULL;
    tu_ok(cg_mul(w1, x, &y));
    tu_ok(cg_sum(y, &loss));
    cg_tensor_release(y);
    tu_ok(cg_tensor_backward(loss, NULL, false));
    cg_tensor_release(loss);
    cg_tensor_release(x);
    cg_tensor_release(w1); /* the handle still holds it */
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_gt(tu_alloc_live(), 0);
    cg_hook_handle_remove(h);
    ck_assert_int_eq(tu_alloc_live(), 0);
    tu_alloc_end();
}
END_TEST

/* Every allocation of registration + backward failing in turn. */
static cg_status sweep_scenario(void *ctx)
{
    (void)ctx;
    int64_t shape[1] = {3};
    cg_tensor *w = NULL, *y = NULL, *loss = NULL;
    cg_hook_handle *h = NULL;
    cg_status st;
    if ((st = cg_tensor_from_data(W1, shape, 1, CG_FLOAT64, &w)) ||
        (st = cg_tensor_requires_grad_(w, true)) ||
        (st = cg_tensor_register_post_accumulate_grad_hook(w, nop, NULL, &h)) ||
        (st = cg_mul(w, w, &y)) || (st = cg_sum(y, &loss)) ||
        (st = cg_tensor_backward(loss, NULL, false)))
        goto done;
done:
    cg_hook_handle_remove(h);
    cg_tensor_release(loss);
    cg_tensor_release(y);
    cg_tensor_release(w);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(sweep_scenario, NULL, "hook");
    ck_assert_int_gt(n, 5);
}
END_TEST

Suite *autograd_hooks_suite(void)
{
    Suite *s = suite_create("autograd_hooks");
    TCase *tc = tcase_create("post_accumulate_grad");
    tcase_add_test(tc, test_hook_runs_during_backward_in_engine_order);
    tcase_add_test(tc, test_hook_runs_before_rest_of_backward);
    tcase_add_test(tc, test_hook_once_per_leaf_and_on_leaf_root);
    tcase_add_test(tc, test_hook_error_aborts_backward);
    tcase_add_test(tc, test_hook_may_remove_itself);
    tcase_add_test(tc, test_register_errors);
    tcase_add_test(tc, test_handle_owns_leaf_no_leak);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
