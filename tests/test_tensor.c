/* test_tensor.c -- the tensor core: creation, properties, element access,
 * views and copies, and every error path with PyTorch 1.13's message. */
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A sentinel: a failing call must leave *out exactly as it was. */
#define UNTOUCHED ((cg_tensor *)(uintptr_t)0x5a5a5a5a)

static cg_tensor *arange_shaped(const int64_t *shape, int ndim, cg_dtype dt)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    cg_tensor *a = NULL, *r = NULL;
    tu_ok(cg_arange(n, dt, &a));
    tu_ok(cg_tensor_reshape(a, shape, ndim, &r));
    cg_tensor_release(a);
    return r;
}

static double at(const cg_tensor *t, const int64_t *idx)
{
    double re = NAN;
    tu_ok(cg_tensor_get(t, idx, &re, NULL));
    return re;
}

/* Snapshot of a tensor's geometry and values, to prove "unchanged". */
typedef struct snap {
    int ndim;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS], offset;
    double *vals;
    int64_t n;
} snap;

static snap take(const cg_tensor *t)
{
    snap s = {.ndim = cg_tensor_dim(t), .offset = cg_tensor_storage_offset(t)};
    memcpy(s.shape, cg_tensor_shape(t), sizeof(int64_t) * (size_t)s.ndim);
    memcpy(s.strides, cg_tensor_strides(t), sizeof(int64_t) * (size_t)s.ndim);
    s.n =
        cg_tensor_numel(t) * (cg_dtype_is_complex(cg_tensor_dtype(t)) ? 2 : 1);
    s.vals = malloc((size_t)(s.n + 1) * sizeof(double));
    ck_assert_ptr_nonnull(s.vals);
    tu_ok(cg_tensor_to_doubles(t, s.vals, s.n));
    return s;
}

static void same(const cg_tensor *t, snap *s)
{
    snap now = take(t);
    ck_assert_int_eq(now.ndim, s->ndim);
    ck_assert_int_eq(now.offset, s->offset);
    ck_assert_mem_eq(now.shape, s->shape, sizeof(int64_t) * (size_t)s->ndim);
    ck_assert_mem_eq(now.strides, s->strides,
                     sizeof(int64_t) * (size_t)s->ndim);
    ck_assert_int_eq(now.n, s->n);
    ck_assert_mem_eq(now.vals, s->vals, sizeof(double) * (size_t)s->n);
    free(now.vals);
    free(s->vals);
}

/* ---- creation ---------------------------------------------------------- */

START_TEST(test_create)
{
    int64_t shape[] = {2, 3};
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, 2, CG_FLOAT32, &t));
    ck_assert_int_eq(cg_tensor_dim(t), 2);
    ck_assert_int_eq(cg_tensor_numel(t), 6);
    ck_assert_int_eq(cg_tensor_strides(t)[0], 3);
    ck_assert_int_eq(cg_tensor_strides(t)[1], 1);
    ck_assert(cg_tensor_is_contiguous(t));
    ck_assert(!cg_tensor_requires_grad(t));
    ck_assert(cg_tensor_is_leaf(t));
    ck_assert_double_eq(at(t, (int64_t[]){1, 2}), 0.0);
    cg_tensor_release(t);

    tu_ok(cg_full(shape, 2, 1.5, CG_FLOAT64, &t));
    ck_assert_double_eq(at(t, (int64_t[]){1, 1}), 1.5);
    ck_assert_int_eq(cg_tensor_dtype(t), CG_FLOAT64);
    cg_tensor_release(t);

    tu_ok(cg_full_complex(shape, 2, 1.0, -2.0, CG_COMPLEX128, &t));
    double re, im;
    tu_ok(cg_tensor_get(t, (int64_t[]){0, 1}, &re, &im));
    ck_assert_double_eq(re, 1.0);
    ck_assert_double_eq(im, -2.0);
    cg_tensor_release(t);

    /* 0-d scalar and empty tensors */
    tu_ok(cg_ones(NULL, 0, CG_FLOAT32, &t));
    ck_assert_int_eq(cg_tensor_dim(t), 0);
    ck_assert_int_eq(cg_tensor_numel(t), 1);
    tu_ok(cg_tensor_item(t, &re, NULL));
    ck_assert_double_eq(re, 1.0);
    cg_tensor_release(t);
    int64_t empty[] = {2, 0, 3};
    tu_ok(cg_empty(empty, 3, CG_COMPLEX64, &t));
    ck_assert_int_eq(cg_tensor_numel(t), 0);
    cg_tensor_release(t);

    float data[] = {1, 2, 3, 4, 5, 6};
    tu_ok(cg_tensor_from_data(data, shape, 2, CG_FLOAT32, &t));
    ck_assert_double_eq(at(t, (int64_t[]){1, 0}), 4.0);
    ck_assert_double_eq(at(t, (int64_t[]){-1, -1}), 6.0);
    cg_tensor_release(t);

    /* 8 and 16 dimensions */
    int64_t eight[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    tu_ok(cg_ones(eight, 8, CG_FLOAT64, &t));
    ck_assert_int_eq(cg_tensor_numel(t), 16);
    cg_tensor_release(t);
    int64_t sixteen[16];
    for (int i = 0; i < 16; i++)
        sixteen[i] = 1 + i % 2;
    tu_ok(cg_zeros(sixteen, 16, CG_FLOAT32, &t));
    ck_assert_int_eq(cg_tensor_numel(t), 256);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_dtype)
{
    ck_assert_str_eq(cg_dtype_name(CG_FLOAT32), "float32");
    ck_assert_str_eq(cg_dtype_name(CG_COMPLEX128), "complex128");
    ck_assert_uint_eq(cg_dtype_size(CG_FLOAT64), 8);
    ck_assert_uint_eq(cg_dtype_size(CG_COMPLEX64), 8);
    ck_assert_uint_eq(cg_dtype_size(CG_COMPLEX128), 16);
    ck_assert(cg_dtype_is_complex(CG_COMPLEX64));
    ck_assert(!cg_dtype_is_complex(CG_FLOAT64));
    ck_assert_int_eq(cg_dtype_to_real(CG_COMPLEX128), CG_FLOAT64);
    ck_assert_int_eq(cg_dtype_to_complex(CG_FLOAT32), CG_COMPLEX64);
    ck_assert_str_eq(cg_status_name(CG_ERR_VALUE), "ValueError");
    ck_assert_str_eq(cg_status_name(CG_ERR_ATTRIBUTE), "AttributeError");
    ck_assert_str_eq(cg_status_name(CG_STATUS_COUNT), "UnknownError");
}
END_TEST

START_TEST(test_create_errors)
{
    cg_tensor *t = UNTOUCHED;
    int64_t neg[] = {2, -1};
    tu_fails(cg_zeros(neg, 2, CG_FLOAT32, &t), CG_ERR_RUNTIME,
             "Trying to create tensor with negative dimension -1: [2, -1]");
    ck_assert_ptr_eq(t, UNTOUCHED);
    int64_t shape[] = {2};
    tu_fails(cg_zeros(shape, 2, (cg_dtype)7, &t), CG_ERR_VALUE,
             "invalid dtype 7");
    tu_fails(cg_zeros(shape, 17, CG_FLOAT32, &t), CG_ERR_RUNTIME,
             "cgrad tensors have at most 16 dimensions, but got 17");
    int64_t huge[] = {INT64_C(1) << 40, INT64_C(1) << 40};
    tu_fails(cg_zeros(huge, 2, CG_FLOAT32, &t), CG_ERR_RUNTIME,
             "Storage size calculation overflowed with "
             "sizes=[1099511627776, 1099511627776]");
    /* an empty tensor may have sizes whose product overflows; its
     * strides wrap around as PyTorch's: (0, 0, 2**60, 2**30, 1) */
    int64_t empty_huge[] = {0, 1, INT64_C(1) << 30, INT64_C(1) << 30,
                            INT64_C(1) << 30};
    const int64_t empty_strides[] = {0, 0, INT64_C(1) << 60, INT64_C(1) << 30,
                                     1};
    cg_tensor *e = NULL;
    tu_ok(cg_empty(empty_huge, 5, CG_FLOAT32, &e));
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(cg_tensor_strides(e)[i], empty_strides[i]);
    cg_tensor_release(e);
    int64_t big[] = {INT64_C(1) << 60};
    tu_fails(cg_zeros(big, 1, CG_COMPLEX128, &t), CG_ERR_RUNTIME,
             "Storage size calculation overflowed with "
             "sizes=[1152921504606846976]");
    ck_assert_ptr_eq(t, UNTOUCHED);
    tu_fails(cg_zeros(shape, 1, CG_FLOAT32, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    ck_assert_str_eq(cg_status_name(cg_last_status()), "TypeError");
    tu_fails(cg_full_complex(shape, 1, 1.0, 2.0, CG_FLOAT32, &t), CG_ERR_TYPE,
             "can't convert complex to float");
    tu_fails(cg_arange(-1, CG_FLOAT32, &t), CG_ERR_RUNTIME,
             "upper bound and larger bound inconsistent with step sign");
    ck_assert_ptr_eq(t, UNTOUCHED);
    /* the out-of-memory message is PyTorch's allocator's */
    int64_t large[] = {INT64_C(1) << 50};
    cg_status st = cg_zeros(large, 1, CG_FLOAT64, &t);
    ck_assert_int_eq(st, CG_ERR_NOMEM);
    ck_assert_str_eq(cg_last_error(),
                     "DefaultCPUAllocator: can't allocate memory: you tried to "
                     "allocate 9007199254740992 bytes.");
    ck_assert_str_eq(cg_status_name(st), "MemoryError");
    ck_assert_ptr_eq(t, UNTOUCHED);
}
END_TEST

/* ---- the error report -------------------------------------------------- */

/* Fails a call on its own thread; the report must stay on that thread. */
static void *fail_elsewhere(void *arg)
{
    cg_tensor *out = NULL;
    cg_status st = cg_zeros((int64_t[]){-3}, 1, CG_FLOAT32, &out);
    bool ok = st == CG_ERR_RUNTIME && cg_last_status() == CG_ERR_RUNTIME &&
              strcmp(cg_last_error(), "Trying to create tensor with negative "
                                      "dimension -3: [-3]") == 0;
    *(bool *)arg = ok;
    return NULL;
}

START_TEST(test_error_report)
{
    static const char *const names[CG_STATUS_COUNT] = {
        "OK",          "ValueError",   "RuntimeError",
        "TypeError",   "IndexError",   "AttributeError",
        "MemoryError", "TypeError",    "NotImplementedError",
        "OSError",     "OverflowError"};
    for (int st = 0; st < CG_STATUS_COUNT; st++)
        ck_assert_str_eq(cg_status_name((cg_status)st), names[st]);
    ck_assert_str_eq(cg_status_name((cg_status)-1), "UnknownError");

    /* "<ExceptionName>: <message>\n", as Python's last traceback line */
    cg_tensor *t = NULL, *w = NULL;
    tu_ok(cg_zeros((int64_t[]){2, 3, 4}, 3, CG_FLOAT32, &t));
    tu_fails(cg_tensor_view(t, (int64_t[]){5, 5}, 2, &w), CG_ERR_RUNTIME,
             "shape '[5, 5]' is invalid for input of size 24");
    ck_assert_int_eq(cg_last_status(), CG_ERR_RUNTIME);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    cg_print_last_error(f);
    cg_print_last_error(NULL); /* ignored */
    rewind(f);
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "RuntimeError: shape '[5, 5]' is invalid for "
                           "input of size 24\n");
    ck_assert_ptr_null(fgets(line, sizeof line, f));
    fclose(f);

    /* a success leaves the report; a failure on another thread does not
     * touch this thread's */
    int64_t d = 0;
    tu_ok(cg_tensor_size(t, 0, &d));
    ck_assert_int_eq(cg_last_status(), CG_ERR_RUNTIME);
    bool other_ok = false;
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fail_elsewhere, &other_ok), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert(other_ok);
    ck_assert_str_eq(cg_last_error(),
                     "shape '[5, 5]' is invalid for input of size 24");
    tu_fails(cg_tensor_transpose(t, 0, 3, &w), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-3, 2], but "
             "got 3)");
    ck_assert_ptr_null(w);

    cg_clear_error();
    ck_assert_int_eq(cg_last_status(), CG_OK);
    ck_assert_str_eq(cg_last_error(), "");
    cg_tensor_release(t);
}
END_TEST

/* ---- element access ----------------------------------------------------- */

START_TEST(test_elements)
{
    int64_t shape[] = {2, 3};
    cg_tensor *t = arange_shaped(shape, 2, CG_FLOAT32);
    double re = -1, im = -1;
    tu_ok(cg_tensor_get(t, (int64_t[]){1, 2}, &re, &im));
    ck_assert_double_eq(re, 5.0);
    ck_assert_double_eq(im, 0.0);
    tu_ok(cg_tensor_set(t, (int64_t[]){0, 1}, 0.1, 0.0));
    ck_assert_double_eq(at(t, (int64_t[]){0, 1}), (double)0.1f);
    snap s = take(t);
    tu_fails(cg_tensor_get(t, (int64_t[]){2, 0}, &re, NULL), CG_ERR_INDEX,
             "index 2 is out of bounds for dimension 0 with size 2");
    tu_fails(cg_tensor_set(t, (int64_t[]){0, -4}, 1.0, 0.0), CG_ERR_INDEX,
             "index -4 is out of bounds for dimension 1 with size 3");
    tu_fails(cg_tensor_set(t, (int64_t[]){0, 0}, 1.0, 1.0), CG_ERR_TYPE,
             "can't convert complex to float");
    tu_fails(cg_tensor_item(t, &re, NULL), CG_ERR_VALUE,
             "only one element tensors can be converted to Python scalars");
    int64_t d = 99;
    tu_fails(cg_tensor_size(t, 2, &d), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-2, 1], but "
             "got 2)");
    ck_assert_int_eq(d, 99);
    tu_ok(cg_tensor_size(t, -1, &d));
    ck_assert_int_eq(d, 3);
    double buf[3];
    tu_fails(cg_tensor_to_doubles(t, buf, 3), CG_ERR_VALUE,
             "destination holds 3 values but the tensor has 6");
    same(t, &s);
    cg_tensor_release(t);

    cg_tensor *z = NULL;
    tu_ok(cg_zeros(NULL, 0, CG_FLOAT32, &z));
    tu_fails(cg_tensor_size(z, 0, &d), CG_ERR_INDEX,
             "dimension specified as 0 but tensor has no dimensions");
    cg_tensor_release(z);
}
END_TEST

START_TEST(test_version_counter)
{
    /* writes through any view are seen by every view (shared counter) */
    int64_t shape[] = {4};
    cg_tensor *t = arange_shaped(shape, 1, CG_FLOAT64), *v = NULL;
    tu_ok(cg_tensor_narrow(t, 0, 1, 2, &v));
    ck_assert(cg_tensor_shares_storage(t, v));
    tu_ok(cg_tensor_set(v, (int64_t[]){0}, 10.0, 0.0));
    ck_assert_double_eq(at(t, (int64_t[]){1}), 10.0);
    cg_tensor_release(v);
    cg_tensor_release(t);
}
END_TEST

/* ---- views -------------------------------------------------------------- */

START_TEST(test_view_reshape)
{
    int64_t shape[] = {2, 3, 4};
    cg_tensor *t = arange_shaped(shape, 3, CG_FLOAT32), *v = NULL, *w = NULL;
    tu_ok(cg_tensor_view(t, (int64_t[]){-1, 4}, 2, &v));
    tu_assert_shape(v, (int64_t[]){6, 4}, 2);
    ck_assert(cg_tensor_shares_storage(t, v));
    ck_assert_double_eq(at(v, (int64_t[]){5, 3}), 23.0);
    cg_tensor_release(v);

    /* a transposed tensor can be viewed only along compatible chunks */
    tu_ok(cg_tensor_transpose(t, 0, 1, &v));
    tu_assert_shape(v, (int64_t[]){3, 2, 4}, 3);
    ck_assert(!cg_tensor_is_contiguous(v));
    ck_assert_double_eq(at(v, (int64_t[]){2, 1, 3}), 23.0);
    tu_ok(cg_tensor_view(v, (int64_t[]){3, 2, 2, 2}, 4, &w));
    ck_assert(cg_tensor_shares_storage(v, w));
    cg_tensor_release(w);
    w = UNTOUCHED;
    tu_fails(cg_tensor_view(v, (int64_t[]){24}, 1, &w), CG_ERR_RUNTIME,
             "view size is not compatible with input tensor's size and stride "
             "(at least one dimension spans across two contiguous subspaces). "
             "Use .reshape(...) instead.");
    ck_assert_ptr_eq(w, UNTOUCHED);
    /* reshape copies when it must */
    tu_ok(cg_tensor_reshape(v, (int64_t[]){24}, 1, &w));
    ck_assert(!cg_tensor_shares_storage(v, w));
    ck_assert_double_eq(at(w, (int64_t[]){4}), 12.0); /* v[0,1,0] */
    cg_tensor_release(w);
    tu_ok(cg_tensor_reshape(t, (int64_t[]){4, 6}, 2, &w));
    ck_assert(cg_tensor_shares_storage(t, w));
    cg_tensor_release(w);
    cg_tensor_release(v);

    snap s = take(t);
    w = UNTOUCHED;
    tu_fails(cg_tensor_view(t, (int64_t[]){5, 5}, 2, &w), CG_ERR_RUNTIME,
             "shape '[5, 5]' is invalid for input of size 24");
    tu_fails(cg_tensor_view(t, (int64_t[]){-1, -1}, 2, &w), CG_ERR_RUNTIME,
             "only one dimension can be inferred");
    tu_fails(cg_tensor_reshape(t, (int64_t[]){-1, 0}, 2, &w), CG_ERR_RUNTIME,
             "shape '[-1, 0]' is invalid for input of size 24");
    tu_fails(cg_tensor_view(t, (int64_t[]){-2, 12}, 2, &w), CG_ERR_RUNTIME,
             "invalid shape dimension -2");
    ck_assert_ptr_eq(w, UNTOUCHED);
    same(t, &s);

    tu_ok(cg_tensor_flatten(t, 1, -1, &w));
    tu_assert_shape(w, (int64_t[]){2, 12}, 2);
    cg_tensor_release(w);
    tu_fails(cg_tensor_flatten(t, 2, 0, &w), CG_ERR_RUNTIME,
             "flatten() has invalid args: start_dim cannot come after "
             "end_dim");
    cg_tensor_release(t);

    /* a 0-d tensor views as any all-ones shape */
    cg_tensor *z = NULL;
    tu_ok(cg_full(NULL, 0, 3.0, CG_FLOAT32, &z));
    tu_ok(cg_tensor_view(z, (int64_t[]){1, 1}, 2, &w));
    ck_assert_double_eq(at(w, (int64_t[]){0, 0}), 3.0);
    cg_tensor_release(w);
    cg_tensor_release(z);
}
END_TEST

START_TEST(test_squeeze_unsqueeze)
{
    int64_t shape[] = {2, 1, 3};
    cg_tensor *t = arange_shaped(shape, 3, CG_FLOAT64), *v = NULL, *w = NULL;
    tu_ok(cg_tensor_unsqueeze(t, -1, &v));
    tu_assert_shape(v, (int64_t[]){2, 1, 3, 1}, 4);
    tu_ok(cg_tensor_squeeze(v, &w));
    tu_assert_shape(w, (int64_t[]){2, 3}, 2);
    ck_assert_double_eq(at(w, (int64_t[]){1, 2}), 5.0);
    cg_tensor_release(w);
    tu_ok(cg_tensor_squeeze_dim(v, 0, &w)); /* size 2: unchanged shape */
    tu_assert_shape(w, (int64_t[]){2, 1, 3, 1}, 4);
    cg_tensor_release(w);
    tu_ok(cg_tensor_squeeze_dim(v, 1, &w));
    tu_assert_shape(w, (int64_t[]){2, 3, 1}, 3);
    cg_tensor_release(w);
    w = UNTOUCHED;
    tu_fails(cg_tensor_unsqueeze(t, 5, &w), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-4, 3], but "
             "got 5)");
    tu_fails(cg_tensor_squeeze_dim(t, -4, &w), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-3, 2], but "
             "got -4)");
    ck_assert_ptr_eq(w, UNTOUCHED);
    cg_tensor_release(v);
    cg_tensor_release(t);

    /* 0-d: unsqueeze(-1) gives [1]; squeeze(0) and squeeze(-1) keep [] */
    cg_tensor *z = NULL;
    tu_ok(cg_full(NULL, 0, 2.0, CG_FLOAT32, &z));
    tu_ok(cg_tensor_unsqueeze(z, -1, &v));
    tu_assert_shape(v, (int64_t[]){1}, 1);
    cg_tensor_release(v);
    tu_ok(cg_tensor_squeeze_dim(z, -1, &v));
    ck_assert_int_eq(cg_tensor_dim(v), 0);
    cg_tensor_release(v);
    cg_tensor_release(z);
}
END_TEST

START_TEST(test_permute_transpose)
{
    int64_t shape[] = {2, 3, 4};
    cg_tensor *t = arange_shaped(shape, 3, CG_FLOAT32), *v = NULL;
    tu_ok(cg_tensor_permute(t, (int64_t[]){2, 0, -2}, 3, &v));
    tu_assert_shape(v, (int64_t[]){4, 2, 3}, 3);
    ck_assert_double_eq(at(v, (int64_t[]){3, 1, 2}), 23.0);
    ck_assert_double_eq(at(v, (int64_t[]){1, 0, 2}), 9.0);
    cg_tensor_release(v);
    v = UNTOUCHED;
    tu_fails(cg_tensor_permute(t, (int64_t[]){0}, 1, &v), CG_ERR_RUNTIME,
             "permute(sparse_coo): number of dimensions in the tensor input "
             "does not match the length of the desired ordering of dimensions "
             "i.e. input.dim() = 3 is not equal to len(dims) = 1");
    tu_fails(cg_tensor_permute(t, (int64_t[]){0, 0, 1}, 3, &v), CG_ERR_RUNTIME,
             "permute(): duplicate dims are not allowed.");
    tu_fails(cg_tensor_transpose(t, 0, 3, &v), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-3, 2], but "
             "got 3)");
    ck_assert_ptr_eq(v, UNTOUCHED);
    cg_tensor_release(t);
}
END_TEST

/* An empty tensor may have sizes whose product overflows, as long as the
 * sizes multiplied in order fit ([0, 2**40, 2**40] is a tensor,
 * [2**40, 2**40, 0] is not): a view that would put the 0 last fails with
 * PyTorch 1.13's message instead of overflowing numel. */
START_TEST(test_empty_huge_views)
{
    const int64_t B = INT64_C(1) << 40;
    cg_tensor *t = NULL, *v = UNTOUCHED;
    tu_ok(cg_empty((int64_t[]){0, B, B}, 3, CG_FLOAT32, &t));
    ck_assert_int_eq(cg_tensor_numel(t), 0);
    tu_fails(cg_tensor_permute(t, (int64_t[]){1, 2, 0}, 3, &v), CG_ERR_RUNTIME,
             "numel: integer multiplication overflow");
    tu_fails(cg_tensor_transpose(t, 0, 2, &v), CG_ERR_RUNTIME,
             "numel: integer multiplication overflow");
    tu_fails(cg_tensor_view(t, (int64_t[]){B, B, 0}, 3, &v), CG_ERR_RUNTIME,
             "shape '[1099511627776, 1099511627776, 0]' is invalid for input "
             "of size 0");
    ck_assert_ptr_eq(v, UNTOUCHED);
    tu_assert_shape(t, (int64_t[]){0, B, B}, 3);
    /* views that keep a 0 ahead of the huge sizes are fine */
    tu_ok(cg_tensor_permute(t, (int64_t[]){0, 2, 1}, 3, &v));
    ck_assert_int_eq(cg_tensor_numel(v), 0);
    cg_tensor_release(v);
    tu_ok(cg_tensor_view(t, (int64_t[]){B, 0, B}, 3, &v));
    ck_assert_int_eq(cg_tensor_numel(v), 0);
    cg_tensor_release(v);
    cg_tensor_release(t);
    tu_ok(cg_empty((int64_t[]){1, 1, 0}, 3, CG_FLOAT32, &t));
    v = UNTOUCHED;
    tu_fails(cg_tensor_expand(t, (int64_t[]){B, B, 0}, 3, &v), CG_ERR_RUNTIME,
             "numel: integer multiplication overflow");
    ck_assert_ptr_eq(v, UNTOUCHED);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_slice_select)
{
    int64_t shape[] = {4, 5};
    cg_tensor *t = arange_shaped(shape, 2, CG_FLOAT32), *v = NULL;
    tu_ok(cg_tensor_slice(t, 1, 1, INT64_MAX, 2, &v)); /* t[:, 1::2] */
    tu_assert_shape(v, (int64_t[]){4, 2}, 2);
    ck_assert_double_eq(at(v, (int64_t[]){3, 1}), 18.0);
    cg_tensor_release(v);
    tu_ok(cg_tensor_slice(t, 0, -10, 2, 1, &v)); /* t[-10:2] */
    tu_assert_shape(v, (int64_t[]){2, 5}, 2);
    cg_tensor_release(v);
    tu_ok(cg_tensor_slice(t, 1, 5, 10, 1, &v)); /* t[:, 5:10] is empty */
    tu_assert_shape(v, (int64_t[]){4, 0}, 2);
    cg_tensor_release(v);
    tu_ok(cg_tensor_narrow(t, 0, -1, 1, &v));
    ck_assert_double_eq(at(v, (int64_t[]){0, 0}), 15.0);
    cg_tensor_release(v);
    tu_ok(cg_tensor_select(t, 1, -1, &v));
    tu_assert_shape(v, (int64_t[]){4}, 1);
    ck_assert_double_eq(at(v, (int64_t[]){2}), 14.0);
    cg_tensor_release(v);
    v = UNTOUCHED;
    tu_fails(cg_tensor_slice(t, 0, 0, 4, 0, &v), CG_ERR_VALUE,
             "slice step cannot be zero");
    tu_fails(cg_tensor_slice(t, 0, 0, 4, -1, &v), CG_ERR_VALUE,
             "step must be greater than zero");
    tu_fails(cg_tensor_narrow(t, 0, 1, 5, &v), CG_ERR_RUNTIME,
             "start (1) + length (5) exceeds dimension size (4).");
    tu_fails(cg_tensor_narrow(t, 0, 0, -1, &v), CG_ERR_RUNTIME,
             "start (0) + length (-1) exceeds dimension size (4).");
    tu_fails(cg_tensor_narrow(t, 0, -5, 1, &v), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-4, 3], but "
             "got -5)");
    tu_fails(cg_tensor_select(t, 0, 4, &v), CG_ERR_INDEX,
             "select(): index 4 out of range for tensor of size [4, 5] at "
             "dimension 0");
    ck_assert_ptr_eq(v, UNTOUCHED);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_expand)
{
    int64_t shape[] = {3, 1};
    cg_tensor *t = arange_shaped(shape, 2, CG_FLOAT64), *v = NULL;
    tu_ok(cg_tensor_expand(t, (int64_t[]){2, 3, 4}, 3, &v));
    tu_assert_shape(v, (int64_t[]){2, 3, 4}, 3);
    ck_assert_int_eq(cg_tensor_strides(v)[0], 0);
    ck_assert_int_eq(cg_tensor_strides(v)[2], 0);
    ck_assert_double_eq(at(v, (int64_t[]){1, 2, 3}), 2.0);
    cg_tensor_release(v);
    tu_ok(cg_tensor_expand(t, (int64_t[]){-1, 5}, 2, &v));
    tu_assert_shape(v, (int64_t[]){3, 5}, 2);
    cg_tensor_release(v);
    v = UNTOUCHED;
    tu_fails(cg_tensor_expand(t, (int64_t[]){4, 4}, 2, &v), CG_ERR_RUNTIME,
             "The expanded size of the tensor (4) must match the existing size "
             "(3) at non-singleton dimension 0.  Target sizes: [4, 4].  Tensor "
             "sizes: [3, 1]");
    tu_fails(cg_tensor_expand(t, (int64_t[]){3}, 1, &v), CG_ERR_RUNTIME,
             "expand(torch.DoubleTensor{[3, 1]}, size=[3]): the number of "
             "sizes provided (1) must be greater or equal to the number of "
             "dimensions in the tensor (2)");
    tu_fails(cg_tensor_expand(t, (int64_t[]){-1, -1, 1}, 3, &v), CG_ERR_RUNTIME,
             "The expanded size of the tensor (-1) isn't allowed in a leading, "
             "non-existing dimension 0");
    ck_assert_ptr_eq(v, UNTOUCHED);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_copies)
{
    int64_t shape[] = {2, 3};
    cg_tensor *t = arange_shaped(shape, 2, CG_FLOAT32), *tt = NULL, *c = NULL;
    tu_ok(cg_tensor_transpose(t, 0, 1, &tt));
    tu_ok(cg_tensor_contiguous(tt, &c));
    ck_assert(cg_tensor_is_contiguous(c));
    ck_assert(!cg_tensor_shares_storage(c, tt));
    ck_assert_double_eq(at(c, (int64_t[]){2, 1}), 5.0);
    cg_tensor_release(c);
    tu_ok(cg_tensor_contiguous(t, &c));
    ck_assert_ptr_eq(c, t); /* already contiguous: the same tensor */
    cg_tensor_release(c);
    tu_ok(cg_tensor_to(tt, CG_COMPLEX128, &c));
    double re, im;
    tu_ok(cg_tensor_get(c, (int64_t[]){1, 1}, &re, &im));
    ck_assert_double_eq(re, 4.0);
    ck_assert_double_eq(im, 0.0);
    cg_tensor *back = NULL;
    tu_ok(cg_tensor_to(c, CG_FLOAT32, &back)); /* drops the imaginary part */
    tu_assert_bitwise(back, tt, "round trip through complex128");
    cg_tensor_release(back);
    cg_tensor_release(c);

    /* copy_ broadcasts and converts; fill_ and zero_ work on views */
    cg_tensor *row = NULL;
    double vals[] = {7, 8, 9};
    tu_ok(cg_tensor_from_data(vals, (int64_t[]){3}, 1, CG_FLOAT64, &row));
    tu_ok(cg_tensor_copy_(t, row));
    ck_assert_double_eq(at(t, (int64_t[]){1, 2}), 9.0);
    ck_assert_double_eq(at(tt, (int64_t[]){2, 1}), 9.0);
    tu_ok(cg_tensor_fill_(tt, -1.0));
    ck_assert_double_eq(at(t, (int64_t[]){0, 0}), -1.0);
    cg_tensor *col = NULL;
    tu_ok(cg_tensor_select(t, 1, 1, &col));
    tu_ok(cg_tensor_zero_(col));
    ck_assert_double_eq(at(t, (int64_t[]){1, 1}), 0.0);
    ck_assert_double_eq(at(t, (int64_t[]){1, 2}), -1.0);
    snap s = take(t);
    cg_tensor *bad = NULL;
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &bad));
    tu_fails(cg_tensor_copy_(t, bad), CG_ERR_RUNTIME,
             "The expanded size of the tensor (3) must match the existing size "
             "(2) at non-singleton dimension 1.  Target sizes: [2, 3].  Tensor "
             "sizes: [2]");
    same(t, &s);
    /* copying a tensor onto an overlapping view of itself */
    cg_tensor *t2 = arange_shaped((int64_t[]){5}, 1, CG_FLOAT32), *hi = NULL,
              *lo = NULL;
    tu_ok(cg_tensor_narrow(t2, 0, 1, 4, &hi));
    tu_ok(cg_tensor_narrow(t2, 0, 0, 4, &lo));
    tu_ok(cg_tensor_copy_(hi, lo));
    ck_assert_double_eq(at(t2, (int64_t[]){4}), 3.0);
    ck_assert_double_eq(at(t2, (int64_t[]){1}), 0.0);
    cg_tensor_release(hi);
    cg_tensor_release(lo);
    cg_tensor_release(t2);
    cg_tensor_release(bad);
    cg_tensor_release(col);
    cg_tensor_release(row);
    cg_tensor_release(tt);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_null_args)
{
    cg_tensor *out = UNTOUCHED;
    tu_fails(cg_tensor_view(NULL, (int64_t[]){1}, 1, &out), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_tensor_clone(NULL, &out), CG_ERR_MISUSE,
             "tensor must not be NULL");
    ck_assert_ptr_eq(out, UNTOUCHED);
    cg_tensor_release(NULL); /* a no-op */
    ck_assert_ptr_null(cg_tensor_retain(NULL));
}
END_TEST

/* ---- allocation failures: each allocation fails in turn ----------------- */

static cg_status views_scenario(void *ctx)
{
    (void)ctx;
    cg_tensor *t = NULL, *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    int64_t shape[] = {2, 3, 4};
    cg_status st = cg_zeros(shape, 3, CG_FLOAT32, &t);
    if (st == CG_OK)
        st = cg_tensor_transpose(t, 0, 2, &a);
    if (st == CG_OK)
        st = cg_tensor_reshape(a, (int64_t[]){-1}, 1, &b); /* copies */
    if (st == CG_OK)
        st = cg_tensor_view(t, (int64_t[]){6, 4}, 2, &c);
    if (st == CG_OK)
        st = cg_tensor_to(c, CG_COMPLEX64, &d);
    /* every other view op and copy, each on a (non-contiguous) view */
    cg_tensor *v[11] = {NULL};
    if (st == CG_OK)
        st = cg_tensor_unsqueeze(a, 1, &v[0]);
    if (st == CG_OK)
        st = cg_tensor_squeeze_dim(v[0], 1, &v[1]);
    if (st == CG_OK)
        st = cg_tensor_squeeze(v[0], &v[2]);
    if (st == CG_OK)
        st = cg_tensor_permute(v[0], (int64_t[]){3, 1, 0, 2}, 4, &v[3]);
    if (st == CG_OK)
        st = cg_tensor_narrow(v[3], 2, 1, 2, &v[4]);
    if (st == CG_OK)
        st = cg_tensor_slice(v[4], 2, 0, INT64_MAX, 2, &v[5]);
    if (st == CG_OK)
        st = cg_tensor_select(v[5], 0, 1, &v[6]);
    if (st == CG_OK)
        st = cg_tensor_expand(v[6], (int64_t[]){5, 2, 1, 3}, 4, &v[7]);
    if (st == CG_OK)
        st = cg_tensor_flatten(v[7], 0, 1, &v[8]); /* copies */
    if (st == CG_OK)
        st = cg_tensor_contiguous(v[7], &v[9]);
    if (st == CG_OK)
        st = cg_tensor_clone(v[5], &v[10]);
    for (int i = 10; i >= 0; i--)
        cg_tensor_release(v[i]);
    cg_tensor_release(d);
    cg_tensor_release(c);
    cg_tensor_release(b);
    cg_tensor_release(a);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_alloc_failures)
{
    long n = tu_alloc_sweep(views_scenario, NULL, "view/reshape/to");
    ck_assert_int_ge(n, 20);
}
END_TEST

Suite *tensor_suite(void)
{
    Suite *s = suite_create("tensor");
    TCase *tc = tcase_create("create");
    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_dtype);
    tcase_add_test(tc, test_elements);
    tcase_add_test(tc, test_version_counter);
    suite_add_tcase(s, tc);
    tc = tcase_create("views");
    tcase_add_test(tc, test_view_reshape);
    tcase_add_test(tc, test_squeeze_unsqueeze);
    tcase_add_test(tc, test_permute_transpose);
    tcase_add_test(tc, test_empty_huge_views);
    tcase_add_test(tc, test_slice_select);
    tcase_add_test(tc, test_expand);
    tcase_add_test(tc, test_copies);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_error_report);
    tcase_add_test(tc, test_null_args);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    return s;
}
