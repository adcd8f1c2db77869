/*
 * threadpool.c -- the pthreads pool that runs kernels in parallel, with
 * torch.set_num_threads / torch.get_num_threads semantics.
 *
 * Workers are started once (lazily, at the first parallel loop). Between
 * jobs a worker first watches for the next one for SPIN_NS (100 us), then
 * sleeps on a condition variable; the caller, once its own share is done,
 * watches for the workers' end the same way. The ops of a training step
 * follow each other within microseconds, and waking a sleeping thread
 * costs tens of microseconds (more on a virtual machine), a large part of
 * a kernel that itself takes a few hundred; an idle pool is asleep after
 * 100 us, so it never holds a core that other work needs for longer than
 * that (spinning without end, as OpenMP runtimes may, costs up to 2.5x on
 * 2 cores when two pools meet). Handing a job over takes no lock while
 * the threads are awake: the caller writes the job's line and each
 * worker's slot, a worker reads them and enters with one compare-and-swap,
 * and the last one out decrements a counter the caller watches; the lock
 * and the condition variables serve only threads that went to sleep (an
 * empty job on 2 cores: 0.57 -> 0.45 us, 1.45 -> 0.93-1.24 us when the
 * host makes moving cache lines between the cores slow). A job is a loop over
 * `n` chunks; chunk boundaries are chosen by the caller from the problem
 * size alone, and each chunk is computed whole by one thread, so results
 * are bitwise identical whatever the thread count (PyTorch does not promise
 * this; cgrad does).
 *   Who computes which chunk does not change the results, only the time.
 * Each thread starts with its share: a contiguous range of chunks, the
 * same ranges as static partitioning (ggml's (ith, nth) idea), so that
 * consecutive ops leave each thread its own part of the data. It claims
 * half of what is left of its share at a time; when its share is empty it
 * claims half of what is left of the others' shares in turn, when enough
 * is left to be worth it (see claim). On an idle machine the shares take
 * about the same time and a thread seldom claims another's chunks. When one
 * core is slower (another program on it, a laptop's efficiency cores, a
 * neighbour on a shared host), the others take over its unclaimed chunks
 * instead of waiting for it to get to them. The caller's thread computes
 * the first share itself.
 *   A worker that has not begun its share by the time the caller is done
 * with the claims it can make and has waited as long again as that took
 * (at most SPIN_NS) -- descheduled, asleep, or slow to wake -- is left
 * out of the job: the caller withdraws its offer (one compare-and-swap on
 * the worker's ticket decides whether the worker entered first or the
 * offer was withdrawn) and computes the rest of that share itself, and the
 * job ends without waiting for that worker. With more busy threads than
 * cores (a compile beside a training run), a job no longer waits for a
 * thread that is not running. Workers beyond the job's thread count (a
 * job with fewer chunks than threads) take no part and are not waited
 * for either.
 *
 * One job runs at a time. A parallel loop started while another is running
 * (from a second user thread, or from inside a kernel) runs serially in its
 * own thread instead of waiting: the answer is the same, and nothing can
 * deadlock. The pool never calls user code and holds no lock while a
 * kernel runs.
 *
 * Thread count: CGRAD_NUM_THREADS from the environment, else the number of
 * online cores; cg_set_num_threads changes it (joining the old workers and
 * starting the new ones lazily).
 */
#include "threadpool_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* How long a thread watches for work (or for the workers' end) before it
 * sleeps. */
#define SPIN_NS 100000L

#define MAX_THREADS 256

static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER; /* one job */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;     /* sleeping */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;

static atomic_int num_threads; /* 0 until first read; read without a lock
                                  (twice per job) */
static int running;            /* workers started (excluding caller) */
static pthread_t workers[MAX_THREADS];
static uint64_t start_gen[MAX_THREADS]; /* generation at creation */
static atomic_bool stopping;
/* tests only: workers stall before entering a job, as a descheduled
 * thread would (until stopped) */
static atomic_bool stall_workers;

/* The current job, on one cache line: a worker that sees the generation
 * change reads the rest from the same line, without a lock. The caller
 * writes the fields, then the generation (jobs are numbered from 1). A
 * worker may read the fields of a later job than the generation it saw
 * (it was left out of that one and the next has begun): its ticket for
 * the generation it saw is then gone, and it runs nothing. */
static struct {
    _Alignas(64) _Atomic uint64_t generation;
    _Atomic(cg_parallel_home_fn) fn;
    _Atomic(void *) ctx;
    atomic_int threads;
} job;
/* The job's end, and the flags beside the condition variables, on a line
 * of their own. A sleeper (or the caller waiting for the workers) sets its
 * flag under `lock` and checks again before it waits; the other side
 * changes the state, then reads the flag, and takes `lock` to wake it only
 * when it is set (Dekker's pattern). Both sides' store and load must be
 * sequentially consistent -- release/acquire would let each miss the other
 * and lose a wake-up (the caller's would hang) -- and are written so at
 * each place (SC below). */
static struct {
    _Alignas(64) atomic_int pending; /* workers in the job, not yet done */
    atomic_int sleepers;             /* workers waiting on `wake` */
    atomic_bool caller_waiting;      /* the caller waiting on `done` */
} waits;
#define SC memory_order_seq_cst

/* A thread's slot in the job, on a line of its own: its share (chunks
 * [next, end) are not claimed yet; home is the share's first chunk, set
 * once per job) and, for a worker, the job's offer to it: 2g while job g
 * is open to it, 2g + 1 once it has entered, 0 once the caller has
 * withdrawn it. An open offer is never 0, and 64 bits never wrap. */
typedef struct slot {
    _Alignas(64) _Atomic int64_t next;
    int64_t end;
    int64_t home;
    _Atomic uint64_t ticket;
} slot;

static slot slots[MAX_THREADS];

static _Thread_local bool in_parallel; /* nested loops run serially */

static int default_threads(void)
{
    const char *env = getenv("CGRAD_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1)
            return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    return cores > MAX_THREADS ? MAX_THREADS : (int)cores;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - t0->tv_sec) * 1000000000 +
           (t.tv_nsec - t0->tv_nsec);
}

/* Watches, for up to SPIN_NS, for a new job (new_job: the generation is
 * no longer `seen`, or the pool is stopping) or for the workers' end
 * (!new_job: pending == 0).
 * Returns whether it came; if not, the caller waits on a condition
 * variable, checking again under the lock first. */
static bool spin_for(bool new_job, uint64_t seen)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 1;; i++) {
        if (new_job
                ? atomic_load(&job.generation) != seen || atomic_load(&stopping)
                : atomic_load(&waits.pending) == 0)
            return true;
        cpu_relax();
        if (i % 64 == 0 && elapsed_ns(&t0) > SPIN_NS)
            return false;
    }
}

/* Chunks [begin, end) of thread `ith` among `nth`. */
static void range_of(int64_t n, int ith, int nth, int64_t *begin, int64_t *end)
{
    int64_t base = n / nth, extra = n % nth;
    *begin = ith * base + (ith < extra ? ith : extra);
    *end = *begin + base + (ith < extra ? 1 : 0);
}

/* Claims half of what is left of s: [*b, *e). The share's owner rounds
 * up. Another thread rounds down, and takes nothing while less than a
 * quarter of the share is left: the owner is then nearly done, and the
 * chunks would reach the other thread cold, and move the data of the next
 * op too, for little gain (tiny ops lost up to 10% that way); in
 * particular the last chunk of a share is always its owner's. False when
 * there is nothing to take. Each chunk is claimed exactly once, whoever
 * claims it. */
static bool claim(slot *s, bool own, int64_t *b, int64_t *e)
{
    int64_t at = atomic_load_explicit(&s->next, memory_order_relaxed);
    for (;;) {
        int64_t left = s->end - at;
        int64_t take = own ? left - left / 2 : left / 2;
        if (take <= 0 || (!own && 4 * left < s->end - s->home))
            return false;
        if (atomic_compare_exchange_weak_explicit(&s->next, &at, at + take,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *b = at;
            *e = at + take;
            return true;
        }
    }
}

/* Thread ith's part of a job of nth threads: its own share, then what is
 * left of the others', each call told the thread's home chunk. */
static void run_shares(cg_parallel_home_fn fn, void *ctx, int ith, int nth)
{
    const int64_t home = slots[ith].home;
    for (int k = 0; k < nth; k++) {
        slot *s = &slots[(ith + k) % nth];
        int64_t b, e;
        while (claim(s, k == 0, &b, &e))
            fn(ctx, b, e, home);
    }
}

static void *worker_main(void *arg)
{
    int ith = (int)(intptr_t)arg; /* 1..running */
    pthread_mutex_lock(&lock);
    uint64_t seen = start_gen[ith - 1]; /* jobs before it aren't its */
    pthread_mutex_unlock(&lock);
    in_parallel = true;
    for (;;) {
        if (atomic_load(&job.generation) == seen && !atomic_load(&stopping) &&
            !spin_for(true, seen)) {
            pthread_mutex_lock(&lock);
            atomic_fetch_add_explicit(&waits.sleepers, 1, SC);
            while (atomic_load_explicit(&job.generation, SC) == seen &&
                   !atomic_load(&stopping))
                pthread_cond_wait(&wake, &lock);
            atomic_fetch_sub(&waits.sleepers, 1);
            pthread_mutex_unlock(&lock);
        }
        if (atomic_load(&stopping))
            break;
        seen = atomic_load(&job.generation);
        cg_parallel_home_fn fn = atomic_load(&job.fn);
        void *ctx = atomic_load(&job.ctx);
        int nth = atomic_load(&job.threads);
        while (atomic_load(&stall_workers) && !atomic_load(&stopping))
            sched_yield();
        uint64_t offer = 2 * seen;
        if (ith >= nth || !atomic_compare_exchange_strong(&slots[ith].ticket,
                                                          &offer, offer + 1))
            continue; /* not in this job, or left out of it */
        run_shares(fn, ctx, ith, nth);
        /* the last one out wakes a sleeping caller; the flag it reads may
         * already be the next job's caller's (this one gone): a spurious
         * wake-up, harmless since the caller waits in a loop on pending */
        if (atomic_fetch_sub_explicit(&waits.pending, 1, SC) == 1 &&
            atomic_load_explicit(&waits.caller_waiting, SC)) {
            pthread_mutex_lock(&lock);
            pthread_cond_signal(&done);
            pthread_mutex_unlock(&lock);
        }
    }
    return NULL;
}

/* Joins every worker. Called with job_lock held and no job running. */
static void stop_workers(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < running; i++)
        pthread_join(workers[i], NULL);
    pthread_mutex_lock(&lock);
    running = 0;
    stopping = false;
    pthread_mutex_unlock(&lock);
}

/* Starts workers up to `want` - 1 (the caller is one of the threads).
 * Returns how many threads there are: running + 1 (fewer than want if a
 * start failed). */
static int start_workers(int want)
{
    while (running < want - 1) {
        /* job_lock is held, so no job starts before this worker exists */
        pthread_mutex_lock(&lock);
        start_gen[running] = atomic_load(&job.generation);
        pthread_mutex_unlock(&lock);
        if (pthread_create(&workers[running], NULL, worker_main,
                           (void *)(intptr_t)(running + 1)) != 0)
            break;
        running++;
    }
    return running + 1;
}

static void at_exit_stop(void)
{
    if (pthread_mutex_trylock(&job_lock) == 0) {
        stop_workers();
        pthread_mutex_unlock(&job_lock);
    }
}

/* A forked child (Check runs each test in one) has none of the parent's
 * workers: forget them and start afresh if it runs parallel loops. */
static void after_fork_child(void)
{
    pthread_mutex_init(&job_lock, NULL);
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&wake, NULL);
    pthread_cond_init(&done, NULL);
    running = 0;
    stopping = false;
    waits.pending = 0;
    waits.sleepers = 0;
    waits.caller_waiting = false;
    in_parallel = false;
}

static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void register_exit(void)
{
    atexit(at_exit_stop);
    pthread_atfork(NULL, NULL, after_fork_child);
}

int cg_get_num_threads(void)
{
    int n = atomic_load(&num_threads);
    if (n == 0) { /* the first read: the default, unless a set came first */
        int expect = 0;
        n = default_threads();
        if (!atomic_compare_exchange_strong(&num_threads, &expect, n))
            n = expect;
    }
    return n;
}

cg_status cg_set_num_threads(int n)
{
    if (n <= 0)
        return cg__error(CG_ERR_RUNTIME,
                         "set_num_threads expects a positive integer");
    if (n > MAX_THREADS)
        n = MAX_THREADS;
    pthread_mutex_lock(&job_lock); /* waits for a running job to finish */
    if (running > n - 1)
        stop_workers();
    atomic_store(&num_threads, n);
    pthread_mutex_unlock(&job_lock);
    return CG_OK;
}

void cg__parallel_for_home(int64_t n, cg_parallel_home_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    int nth = cg_get_num_threads();
    if (nth > n)
        nth = (int)n;
    if (nth <= 1 || in_parallel || pthread_mutex_trylock(&job_lock) != 0) {
        fn(ctx, 0, n, 0); /* one thread: every chunk, home 0 */
        return;
    }
    pthread_once(&exit_once, register_exit);
    /* the count again, now that cg_set_num_threads (which takes job_lock)
     * cannot change it: a count read before may be stale, and starting
     * that many workers would undo a lower setting */
    nth = cg_get_num_threads();
    if (nth > n)
        nth = (int)n;
    int got = start_workers(nth);
    if (got < nth)
        nth = got;
    if (nth <= 1) {
        pthread_mutex_unlock(&job_lock);
        fn(ctx, 0, n, 0);
        return;
    }
    const uint64_t g = atomic_load(&job.generation) + 1;
    for (int t = 0; t < nth; t++) { /* every share is non-empty: nth <= n */
        int64_t b, e;
        range_of(n, t, nth, &b, &e);
        atomic_store_explicit(&slots[t].next, b, memory_order_relaxed);
        slots[t].end = e;
        slots[t].home = b;
    }
    for (int t = 1; t < nth; t++)
        atomic_store(&slots[t].ticket, 2 * g);
    atomic_store(&waits.pending, nth - 1);
    atomic_store(&job.fn, fn);
    atomic_store(&job.ctx, ctx);
    atomic_store(&job.threads, nth);
    atomic_store_explicit(&job.generation, g, SC);
    if (atomic_load_explicit(&waits.sleepers, SC) > 0) {
        pthread_mutex_lock(&lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&lock);
    }

    in_parallel = true;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run_shares(fn, ctx, 0, nth);
    /* workers that have not entered yet: until as long again as the
     * caller's part took (at most SPIN_NS) has passed, the caller watches
     * for them; then it withdraws the offers still open, and their shares
     * are its own (home 0 for every call, as above). By then the caller has
     * taken all but under a quarter of such a share (see claim): the wait only
     * spares it that quarter when the worker is about to start. */
    const int64_t part = elapsed_ns(&t0);
    const int64_t deadline = part + (part < SPIN_NS ? part : SPIN_NS);
    for (int t = 1; t < nth; t++) {
        uint64_t offer = 2 * g;
        for (unsigned i = 1; atomic_load(&slots[t].ticket) == offer; i++) {
            cpu_relax();
            if (i % 64 == 0 && elapsed_ns(&t0) > deadline)
                break;
        }
        if (!atomic_compare_exchange_strong(&slots[t].ticket, &offer, 0))
            continue;
        atomic_fetch_sub(&waits.pending, 1);
        int64_t b, e;
        while (claim(&slots[t], true, &b, &e))
            fn(ctx, b, e, 0);
    }
    in_parallel = false;

    if (!spin_for(false, 0)) {
        pthread_mutex_lock(&lock);
        atomic_store_explicit(&waits.caller_waiting, true, SC);
        while (atomic_load_explicit(&waits.pending, SC) > 0)
            pthread_cond_wait(&done, &lock);
        atomic_store(&waits.caller_waiting, false);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&job_lock);
}

/* A cg__parallel_for job as a home job: the function has no use for its
 * home. */
typedef struct plain_job {
    cg_parallel_fn fn;
    void *ctx;
} plain_job;

static void run_plain(void *ctx, int64_t begin, int64_t end, int64_t home)
{
    (void)home;
    const plain_job *j = ctx;
    j->fn(j->ctx, begin, end);
}

void cg__parallel_for(int64_t n, cg_parallel_fn fn, void *ctx)
{
    plain_job j = {fn, ctx};
    cg__parallel_for_home(n, run_plain, &j);
}

void cg__threadpool_stall_workers(bool stall)
{
    atomic_store(&stall_workers, stall);
}

/* cg_parallel_for: pool chunk c is the range [begin + c*grain, ...),
 * the last one ending at end. Offsets in unsigned arithmetic: they never
 * pass end, whose distance from begin may exceed INT64_MAX only when the
 * loop runs as one call. */
typedef struct range_job {
    cg_parallel_body fn;
    void *ctx;
    int64_t begin, end, grain, n;
} range_job;

static int64_t range_at(const range_job *r, int64_t c)
{
    if (c >= r->n)
        return r->end;
    return (int64_t)((uint64_t)r->begin + (uint64_t)c * (uint64_t)r->grain);
}

static void run_ranges(void *ctx, int64_t b, int64_t e)
{
    const range_job *r = ctx;
    r->fn(r->ctx, range_at(r, b), range_at(r, e));
}

cg_status cg_parallel_for(int64_t begin, int64_t end, int64_t grain,
                          cg_parallel_body fn, void *ctx)
{
    if (!fn)
        return cg__error_null("fn");
    if (grain < 1)
        return cg__error(CG_ERR_RUNTIME,
                         "parallel_for expects a positive grain, got %lld",
                         (long long)grain);
    if (begin >= end)
        return CG_OK;
    const uint64_t span = (uint64_t)end - (uint64_t)begin;
    if (span > (uint64_t)INT64_MAX || span <= (uint64_t)grain) {
        fn(ctx, begin, end); /* one range */
        return CG_OK;
    }
    range_job r = {
        fn,
        ctx,
        begin,
        end,
        grain,
        (int64_t)(span / (uint64_t)grain + (span % (uint64_t)grain != 0))};
    cg__parallel_for(r.n, run_ranges, &r);
    return CG_OK;
}
