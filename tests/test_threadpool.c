/* test_threadpool.c -- the pthreads pool: every chunk computed exactly once
 * by one thread, thread-count changes, nested and concurrent loops. */
#include "testutil.h"
#include "threadpool_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct count_ctx {
    atomic_int *hits; /* per chunk */
    atomic_int calls;
} count_ctx;

static void count_chunks(void *p, int64_t b, int64_t e)
{
    count_ctx *c = p;
    atomic_fetch_add(&c->calls, 1);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void run_count(int64_t n, int threads)
{
    tu_ok(cg_set_num_threads(threads));
    ck_assert_int_eq(cg_get_num_threads(), threads);
    count_ctx c = {.hits = calloc((size_t)(n ? n : 1), sizeof(atomic_int))};
    ck_assert_ptr_nonnull(c.hits);
    atomic_init(&c.calls, 0);
    cg__parallel_for(n, count_chunks, &c);
    for (int64_t i = 0; i < n; i++)
        ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
    ck_assert_int_le(atomic_load(&c.calls), threads);
    free(c.hits);
}

START_TEST(test_every_chunk_once)
{
    int64_t sizes[] = {0, 1, 2, 3, 7, 64, 1000};
    int threads[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        for (size_t j = 0; j < sizeof threads / sizeof *threads; j++)
            run_count(sizes[i], threads[j]);
}
END_TEST

START_TEST(test_set_num_threads_errors)
{
    int before = cg_get_num_threads();
    tu_fails(cg_set_num_threads(0), CG_ERR_RUNTIME,
             "set_num_threads expects a positive integer");
    tu_fails(cg_set_num_threads(-3), CG_ERR_RUNTIME,
             "set_num_threads expects a positive integer");
    ck_assert_int_eq(cg_get_num_threads(), before);
}
END_TEST

/* A chunk function that itself runs a parallel loop: the inner one runs
 * serially in the worker, and every inner chunk is still done once. */
typedef struct nested_ctx {
    atomic_int total;
} nested_ctx;

static void inner(void *p, int64_t b, int64_t e)
{
    nested_ctx *c = p;
    atomic_fetch_add(&c->total, (int)(e - b));
}

static void outer(void *p, int64_t b, int64_t e)
{
    for (int64_t i = b; i < e; i++)
        cg__parallel_for(10, inner, p);
}

START_TEST(test_nested)
{
    tu_ok(cg_set_num_threads(2));
    nested_ctx c;
    atomic_init(&c.total, 0);
    cg__parallel_for(8, outer, &c);
    ck_assert_int_eq(atomic_load(&c.total), 80);
}
END_TEST

/* Two user threads run loops at once while a third keeps changing the
 * thread count: every loop still covers each chunk exactly once. */
static atomic_bool stop_flag;

static void *loop_thread(void *arg)
{
    (void)arg;
    for (int r = 0; r < 200; r++) {
        count_ctx c = {.hits = calloc(97, sizeof(atomic_int))};
        if (!c.hits)
            return (void *)1;
        atomic_init(&c.calls, 0);
        cg__parallel_for(97, count_chunks, &c);
        for (int i = 0; i < 97; i++)
            if (atomic_load(&c.hits[i]) != 1) {
                free(c.hits);
                return (void *)1;
            }
        free(c.hits);
    }
    return NULL;
}

static void *resize_thread(void *arg)
{
    (void)arg;
    int n = 1;
    while (!atomic_load(&stop_flag)) {
        if (cg_set_num_threads(n) != CG_OK)
            return (void *)1;
        n = n % 4 + 1;
    }
    return NULL;
}

START_TEST(test_concurrent_users)
{
    atomic_store(&stop_flag, false);
    pthread_t a, b, r;
    ck_assert_int_eq(pthread_create(&r, NULL, resize_thread, NULL), 0);
    ck_assert_int_eq(pthread_create(&a, NULL, loop_thread, NULL), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, loop_thread, NULL), 0);
    void *ra, *rb, *rr;
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    atomic_store(&stop_flag, true);
    pthread_join(r, &rr);
    ck_assert_ptr_null(ra);
    ck_assert_ptr_null(rb);
    ck_assert_ptr_null(rr);
}
END_TEST

Suite *threadpool_suite(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_chunk_once);
    tcase_add_test(tc, test_set_num_threads_errors);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_concurrent_users);
    suite_add_tcase(s, tc);
    return s;
}
