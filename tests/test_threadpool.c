/* test_threadpool.c -- the pthreads pool: every chunk computed exactly once
 * by one thread, each thread's home, idle threads taking over a busy one's
 * chunks, stalled workers left out, thread-count changes, nested and
 * concurrent loops, sleeping threads woken. */
#include "testutil.h"
#include "threadpool_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

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
    /* a share of s chunks goes in halves, rounded up by its owner and down
     * by others: fewer than 2 (floor(log2 s) + 1) calls */
    int64_t share = threads < n ? (n + threads - 1) / threads : 1, pieces = 0;
    for (int64_t left = share; left > 0; left /= 2)
        pieces++;
    ck_assert_int_le(atomic_load(&c.calls),
                     (n < threads ? n : threads) * 2 * pieces);
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

/* Each call records its thread and home: every call of a thread has the
 * same home, the threads' homes differ, and each home is the first chunk
 * of a share (the ranges static partitioning would give). */
enum { HOME_CALLS = 4096 };
typedef struct home_ctx {
    pthread_mutex_t lock;
    int calls;
    pthread_t who[HOME_CALLS];
    int64_t home[HOME_CALLS];
    atomic_int *hits;
} home_ctx;

static void record_home(void *p, int64_t b, int64_t e, int64_t home)
{
    home_ctx *c = p;
    pthread_mutex_lock(&c->lock);
    if (c->calls < HOME_CALLS) {
        c->who[c->calls] = pthread_self();
        c->home[c->calls] = home;
    }
    c->calls++;
    pthread_mutex_unlock(&c->lock);
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

START_TEST(test_home)
{
    const int64_t sizes[] = {1, 2, 5, 64, 1001};
    const int threads[] = {1, 2, 3, 8};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
        for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
            const int64_t n = sizes[si];
            const int nth = n < threads[ti] ? (int)n : threads[ti];
            tu_ok(cg_set_num_threads(threads[ti]));
            static home_ctx c;
            pthread_mutex_init(&c.lock, NULL);
            c.calls = 0;
            c.hits = calloc((size_t)n, sizeof(atomic_int));
            ck_assert_ptr_nonnull(c.hits);
            cg__parallel_for_home(n, record_home, &c);
            for (int64_t i = 0; i < n; i++)
                ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
            ck_assert_int_le(c.calls, HOME_CALLS);
            for (int i = 0; i < c.calls; i++) {
                /* a share's first chunk: t * (n / nth) + min(t, n % nth) */
                bool first = false;
                for (int t = 0; t < nth; t++)
                    first |= c.home[i] ==
                             t * (n / nth) + (t < n % nth ? t : n % nth);
                ck_assert_msg(first, "home %lld is no share's first chunk",
                              (long long)c.home[i]);
                for (int j = 0; j < i; j++)
                    ck_assert_msg(pthread_equal(c.who[i], c.who[j]) ==
                                      (c.home[i] == c.home[j]),
                                  "one home per thread, one thread per home");
            }
            free(c.hits);
            pthread_mutex_destroy(&c.lock);
        }
}
END_TEST

/* Idle threads take over a busy thread's chunks. 2 threads, 8 chunks (a
 * share of 4 each): the first chunk the worker computes waits until the
 * caller has computed 5 -- its own 4 and one of the worker's, which only
 * taking over can give it (the worker claims 2 of its 4 first, the caller
 * takes one of the other 2 and leaves the last to the worker). If the pool kept
 * to static shares, the worker would wait in vain for 30 s and the counts below
 * would fail. (No time is asserted: the wait ends as soon as the caller gets
 * there.) */
typedef struct busy_ctx {
    pthread_t caller;
    atomic_int by_caller, by_worker;
} busy_ctx;

static void busy_chunks(void *p, int64_t b, int64_t e)
{
    busy_ctx *c = p;
    for (int64_t i = b; i < e; i++) {
        if (pthread_equal(pthread_self(), c->caller)) {
            atomic_fetch_add(&c->by_caller, 1);
            continue;
        }
        if (atomic_fetch_add(&c->by_worker, 1) > 0)
            continue; /* only the first waits */
        struct timespec t0, t;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            sched_yield();
            clock_gettime(CLOCK_MONOTONIC, &t);
        } while (atomic_load(&c->by_caller) < 5 && t.tv_sec - t0.tv_sec < 30);
    }
}

START_TEST(test_idle_threads_take_over)
{
    tu_ok(cg_set_num_threads(2));
    for (int round = 0; round < 20; round++) {
        busy_ctx c = {.caller = pthread_self()};
        atomic_init(&c.by_caller, 0);
        atomic_init(&c.by_worker, 0);
        cg__parallel_for(8, busy_chunks, &c);
        ck_assert_int_eq(atomic_load(&c.by_caller) + atomic_load(&c.by_worker),
                         8);
        ck_assert_int_ge(atomic_load(&c.by_caller), 5);
    }
}
END_TEST

/* Workers that do not run (stalled before entering, as descheduled
 * threads would be) are left out: the caller computes every chunk and the
 * job ends without them; once running again, they never touch a job they
 * were left out of, and they take part in the next ones. */
typedef struct who_ctx {
    pthread_t caller;
    int64_t n;
    atomic_int by_caller, by_other, *hits;
} who_ctx;

static void who_chunks(void *p, int64_t b, int64_t e)
{
    who_ctx *c = p;
    for (int64_t i = b; i < e; i++) {
        atomic_fetch_add(&c->hits[i], 1);
        if (pthread_equal(pthread_self(), c->caller))
            atomic_fetch_add(&c->by_caller, 1);
        else
            atomic_fetch_add(&c->by_other, 1);
    }
}

/* who_chunks for cg__parallel_for_home, which hands fn and ctx to the
 * workers as they are: a worker running a job it was left out of would
 * write into that job's (kept) counts */
static void who_chunks_home(void *p, int64_t b, int64_t e, int64_t home)
{
    (void)home;
    who_chunks(p, b, e);
}

/* One chunk per thread: the caller's (chunk 0) waits, until its clock's
 * second after next at most, for every worker to do its own */
static void wait_for_workers(void *p, int64_t b, int64_t e)
{
    who_ctx *c = p;
    who_chunks(p, b, e);
    if (!pthread_equal(pthread_self(), c->caller) || b != 0)
        return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        sched_yield();
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (atomic_load(&c->by_other) < c->n - 1 && t.tv_sec - t0.tv_sec < 2);
}

enum { STALL_ROUNDS = 20 };

START_TEST(test_stalled_workers_left_out)
{
    const int threads[] = {2, 3, 8};
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
        const int nth = threads[ti];
        tu_ok(cg_set_num_threads(nth));
        cg__threadpool_stall_workers(true);
        static who_ctx left[STALL_ROUNDS];
        for (int round = 0; round < STALL_ROUNDS; round++) {
            who_ctx *c = &left[round];
            c->caller = pthread_self();
            c->n = 1 + round * 7;
            c->hits = calloc((size_t)c->n, sizeof(atomic_int));
            ck_assert_ptr_nonnull(c->hits);
            atomic_init(&c->by_caller, 0);
            atomic_init(&c->by_other, 0);
            cg__parallel_for_home(c->n, who_chunks_home, c);
            ck_assert_int_eq(atomic_load(&c->by_caller), c->n);
        }
        cg__threadpool_stall_workers(false);
        /* the workers, running again, enter new jobs: each does its own
         * chunk (a one-chunk share is never taken over) */
        bool joined = false;
        for (int round = 0; round < 100 && !joined; round++) {
            atomic_int hits[8];
            for (int i = 0; i < nth; i++)
                atomic_init(&hits[i], 0);
            who_ctx c = {.caller = pthread_self(), .n = nth, .hits = hits};
            atomic_init(&c.by_caller, 0);
            atomic_init(&c.by_other, 0);
            cg__parallel_for(nth, wait_for_workers, &c);
            for (int i = 0; i < nth; i++)
                ck_assert_int_eq(atomic_load(&hits[i]), 1);
            joined = atomic_load(&c.by_other) == nth - 1;
        }
        ck_assert_msg(joined, "%d threads: the workers did not take part again",
                      nth);
        /* ... and none of them touched a job it was left out of */
        for (int round = 0; round < STALL_ROUNDS; round++) {
            who_ctx *c = &left[round];
            for (int64_t i = 0; i < c->n; i++)
                ck_assert_int_eq(atomic_load(&c->hits[i]), 1);
            ck_assert_int_eq(atomic_load(&c->by_other), 0);
            free(c->hits);
        }
    }
}
END_TEST

/* cg_parallel_for (the public loop): every index once, in calls over
 * ranges cut every `grain` from begin -- whatever the thread count --
 * and PyTorch-style argument errors. */
typedef struct range_ctx {
    int64_t begin, grain, end;
    atomic_int *hits; /* per index, from begin */
    atomic_int bad;   /* calls whose bounds are not grain cuts */
    atomic_int calls;
} range_ctx;

static void range_body(void *p, int64_t b, int64_t e)
{
    range_ctx *c = p;
    atomic_fetch_add(&c->calls, 1);
    if (b < c->begin || e > c->end || b >= e || (b - c->begin) % c->grain ||
        (e != c->end && (e - c->begin) % c->grain))
        atomic_fetch_add(&c->bad, 1);
    for (int64_t i = b; i < e && i >= c->begin && i < c->end; i++)
        atomic_fetch_add(&c->hits[i - c->begin], 1);
}

/* records a call that must come alone (no index walked) */
static int whole_calls;
static int64_t whole_b, whole_e;

static void record_whole(void *p, int64_t b, int64_t e)
{
    (void)p;
    whole_calls++;
    whole_b = b;
    whole_e = e;
}

START_TEST(test_public_parallel_for)
{
    static const int64_t cases[][3] = {
        {0, 1000, 7},    {-50, 77, 1},     {5, 6, 3}, {10, 100, 90},
        {0, 4096, 4096}, {-1000, -10, 64}, {3, 3, 1}, {9, 2, 5},
    };
    const int threads[] = {1, 2, 3, 8};
    for (size_t ti = 0; ti < sizeof threads / sizeof *threads; ti++) {
        tu_ok(cg_set_num_threads(threads[ti]));
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            range_ctx c = {
                .begin = cases[k][0], .grain = cases[k][2], .end = cases[k][1]};
            int64_t n = c.end > c.begin ? c.end - c.begin : 0;
            c.hits = calloc((size_t)(n ? n : 1), sizeof(atomic_int));
            ck_assert_ptr_nonnull(c.hits);
            atomic_init(&c.bad, 0);
            atomic_init(&c.calls, 0);
            tu_ok(cg_parallel_for(c.begin, c.end, c.grain, range_body, &c));
            for (int64_t i = 0; i < n; i++)
                ck_assert_msg(
                    atomic_load(&c.hits[i]) == 1,
                    "[%lld, %lld) grain %lld: index %lld hit %d times",
                    (long long)c.begin, (long long)c.end, (long long)c.grain,
                    (long long)(c.begin + i), atomic_load(&c.hits[i]));
            ck_assert_int_eq(atomic_load(&c.bad), 0);
            if (n == 0)
                ck_assert_int_eq(atomic_load(&c.calls), 0);
            free(c.hits);
        }
    }
    /* a range wider than INT64_MAX runs as one call */
    tu_ok(cg_set_num_threads(2));
    whole_calls = 0;
    tu_ok(cg_parallel_for(INT64_MIN, INT64_MAX, 1, record_whole, NULL));
    ck_assert_int_eq(whole_calls, 1);
    ck_assert(whole_b == INT64_MIN && whole_e == INT64_MAX);
    range_ctx none = {.begin = 0, .grain = 1, .end = 0};
    tu_fails(cg_parallel_for(0, 10, 1, NULL, NULL), CG_ERR_MISUSE,
             "fn must not be NULL");
    tu_fails(cg_parallel_for(0, 10, 0, range_body, &none), CG_ERR_RUNTIME,
             "parallel_for expects a positive grain, got 0");
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

/* Threads that went to sleep: after a pause longer than the pool's watch
 * (100 us) the workers sleep and the next job must wake them (or leave
 * them out, computing their shares itself); when a worker's chunk outlasts
 * the caller's part by more than the watch, the caller sleeps until the
 * worker's end wakes it. Every chunk still once, at 2 and 3 threads. */
typedef struct slow_ctx {
    atomic_int hits[16];
    int64_t slow; /* a worker's first chunk, which takes 400 us, or -1 */
    atomic_int by_worker; /* it was computed by a worker */
    pthread_t caller;
} slow_ctx;

static void pause_us(long us)
{
    struct timespec t = {0, us * 1000};
    nanosleep(&t, NULL);
}

static void slow_chunks(void *p, int64_t b, int64_t e)
{
    slow_ctx *c = p;
    for (int64_t i = b; i < e; i++) {
        if (c->slow >= 0 && i == 0)
            pause_us(100); /* the caller's: the workers have time to enter */
        if (i == c->slow) {
            if (!pthread_equal(pthread_self(), c->caller))
                atomic_store(&c->by_worker, 1);
            pause_us(400);
        }
        atomic_fetch_add(&c->hits[i], 1);
    }
}

START_TEST(test_sleep_and_wake)
{
    for (int threads = 2; threads <= 3; threads++) {
        tu_ok(cg_set_num_threads(threads));
        int by_worker = 0;
        /* at least 40 jobs, and on until a worker took the slow chunk (a
         * loaded machine may keep a worker from running for a while) */
        for (int r = 0; r < 40 || (by_worker == 0 && r < 2000); r++) {
            /* the last share's first chunk, claimed first by its owner */
            const int64_t first = 16 - 16 / threads;
            slow_ctx c = {.slow = r % 4 == 3 ? first : -1,
                          .caller = pthread_self()};
            for (int i = 0; i < 16; i++)
                atomic_init(&c.hits[i], 0);
            atomic_init(&c.by_worker, 0);
            if (r % 4 == 0)
                pause_us(300); /* the workers fall asleep */
            cg__parallel_for(16, slow_chunks, &c);
            for (int i = 0; i < 16; i++)
                ck_assert_int_eq(atomic_load(&c.hits[i]), 1);
            by_worker += atomic_load(&c.by_worker);
        }
        /* a worker awake and in the job during the caller's 100 us takes
         * its first chunk; once is enough to have made the caller wait */
        ck_assert_int_gt(by_worker, 0);
    }
}
END_TEST

Suite *threadpool_suite(void)
{
    Suite *s = suite_create("threadpool");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_chunk_once);
    tcase_add_test(tc, test_home);
    tcase_add_test(tc, test_idle_threads_take_over);
    tcase_add_test(tc, test_stalled_workers_left_out);
    tcase_add_test(tc, test_public_parallel_for);
    tcase_add_test(tc, test_set_num_threads_errors);
    tcase_add_test(tc, test_nested);
    tcase_add_test(tc, test_concurrent_users);
    tcase_add_test(tc, test_sleep_and_wake);
    suite_add_tcase(s, tc);
    return s;
}
