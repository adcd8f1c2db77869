/*
 * process_group.c -- torch.distributed's default process group over MPI:
 * init/finalize, rank and world size, barrier, broadcast, the
 * deterministic all-reduce, and the error channel that ends a job cleanly
 * when one rank fails.
 *
 * Communicators. cg_dist_init duplicates MPI_COMM_WORLD four times:
 * `comm` carries broadcasts, barriers and metadata, `scatter` and `gather`
 * the two phases of all-reduces (collectives on each are issued in the
 * same order on every rank, from one thread), `err_comm` only error
 * notices and their acknowledgements (point-to-point, tags TAG_ERROR /
 * TAG_ACK), so a notice can never be mistaken for data. All return MPI
 * errors to us (MPI_ERRORS_RETURN) instead of killing the process.
 *
 * Waiting. Nothing here blocks inside MPI: every operation is started
 * nonblocking and then polled (MPI_Test), and between polls the error
 * channel is probed. A rank that finds a notice prints
 * "[rank R'] aborting: rank R failed: <message>", acknowledges it, marks
 * the world broken, and returns RuntimeError "rank R failed: <message>";
 * every later call returns the same. cg_dist_abort is the sending side.
 * Polls spin briefly, then sleep 20 us between tests, so a waiting rank
 * leaves the cores to ranks still computing (ranks may outnumber cores).
 *
 * The all-reduce (reduce-scatter + all-gather, by hand). The buffer of n
 * elements is split into P = world_size chunks, chunk r = [n*r/P,
 * n*(r+1)/P). Each rank sends chunk r to rank r (MPI_Ialltoallv);
 * rank r then holds P copies of its chunk, one per rank, and sums them in
 * rank order: acc = c_0; acc += c_1; ...; acc += c_{P-1}. The reduced
 * chunks are then gathered to every rank (MPI_Iallgatherv, in place).
 * Each element's sum has one fixed order whatever the timing, and every
 * rank ends with the same bytes. Traffic per rank is 2 n (P-1)/P elements,
 * as a ring all-reduce. AVG divides the reduced chunk by P. Several
 * all-reduces may be in flight (DDP's buckets): the two phases run on two
 * communicators of their own, and each phase's collectives are issued in
 * the order the all-reduces were started, on every rank (progress()).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */
#include "process_group_internal.h"

#include <mpi.h>

#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

enum { TAG_ERROR = 1, TAG_ACK = 2 };
#define MSG_MAX 1024
#define ACK_WAIT_SECONDS 2.0

static struct {
    bool initialized;
    bool own_mpi; /* we called MPI_Init_thread, so we finalize */
    bool broken;  /* a rank failed: every call fails with broken_msg */
    int rank, size;
    MPI_Comm comm;     /* broadcast, barrier, byte gathers */
    MPI_Comm scatter;  /* all-reduce phase 1 (Ialltoallv), start order */
    MPI_Comm gather;   /* all-reduce phase 2 (Iallgatherv), start order */
    MPI_Comm err_comm; /* error notices and acknowledgements */
    struct cg__dist_work *active; /* all-reduces in flight, start order */
    char broken_msg[MSG_MAX + 64];
    double comm_seconds;
} pg = {.rank = -1, .size = -1};

double cg__dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cg__dist_add_comm_seconds(double s)
{
    pg.comm_seconds += s;
}

double cg_dist_comm_seconds(void)
{
    return pg.comm_seconds;
}

const char *cg_reduce_op_name(cg_reduce_op op)
{
    static const char *const names[CG_REDUCE_OP_COUNT] = {"SUM", "AVG", "MIN",
                                                          "MAX"};
    return (unsigned)op < CG_REDUCE_OP_COUNT ? names[op] : "unknown";
}

/* An MPI error code as a RuntimeError: "<what>: <MPI's text>". */
static cg_status mpi_error(int rc, const char *what)
{
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS)
        snprintf(text, sizeof text, "MPI error %d", rc);
    return cg_error(CG_ERR_RUNTIME, "%s: %s", what, text);
}

static cg_status not_initialized(void)
{
    return cg_error(CG_ERR_RUNTIME,
                    "Default process group has not been initialized, please "
                    "make sure to call init_process_group.");
}

/* ---- the error channel ---------------------------------------------------
 */

/* Receives one pending notice, if any: prints it, acknowledges it and
 * breaks the world. */
static cg_status poll_errors(void)
{
    if (pg.broken)
        return cg_error(CG_ERR_RUNTIME, "%s", pg.broken_msg);
    int flag = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ERROR, pg.err_comm, &flag, &status) !=
            MPI_SUCCESS ||
        !flag)
        return CG_OK;
    char msg[MSG_MAX + 1];
    int count = 0;
    MPI_Get_count(&status, MPI_CHAR, &count);
    if (count < 0 || count > MSG_MAX)
        count = MSG_MAX;
    MPI_Recv(msg, count, MPI_CHAR, status.MPI_SOURCE, TAG_ERROR, pg.err_comm,
             MPI_STATUS_IGNORE);
    msg[count] = '\0';
    fprintf(stderr, "[rank %d] aborting: rank %d failed: %s\n", pg.rank,
            status.MPI_SOURCE, msg);
    fflush(stderr);
    MPI_Send(NULL, 0, MPI_CHAR, status.MPI_SOURCE, TAG_ACK, pg.err_comm);
    snprintf(pg.broken_msg, sizeof pg.broken_msg, "rank %d failed: %s",
             status.MPI_SOURCE, msg);
    pg.broken = true;
    return cg_error(CG_ERR_RUNTIME, "%s", pg.broken_msg);
}

cg_status cg__dist_check(void)
{
    if (!pg.initialized)
        return not_initialized();
    return poll_errors();
}

cg_status cg_dist_abort(const char *message)
{
    const char *m = message ? message : "(no message)";
    if (!pg.initialized) {
        fprintf(stderr, "%s\n", m);
        return cg_error(CG_ERR_RUNTIME, "%s", m);
    }
    if (pg.broken) /* told by another rank: already printed, acknowledged */
        MPI_Abort(MPI_COMM_WORLD, 1);
    fprintf(stderr, "[rank %d] %s\n", pg.rank, m);
    fflush(stderr);
    char msg[MSG_MAX + 1];
    snprintf(msg, sizeof msg, "%s", m);
    int len = (int)strlen(msg) + 1;
    /* msg outlives the sends: this function only leaves by MPI_Abort */
    for (int r = 0; r < pg.size; r++) {
        MPI_Request req;
        if (r != pg.rank && MPI_Isend(msg, len, MPI_CHAR, r, TAG_ERROR,
                                      pg.err_comm, &req) == MPI_SUCCESS)
            MPI_Request_free(&req);
    }
    /* Wait for the acknowledgements (each rank has printed the message
     * when it sends one), answering notices of ranks failing at the same
     * time, then end the job. */
    int acks = 0;
    double t0 = cg__dist_now();
    while (acks < pg.size - 1 && cg__dist_now() - t0 < ACK_WAIT_SECONDS) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, pg.err_comm, &flag, &st);
        if (!flag) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
            continue;
        }
        char other[MSG_MAX + 1];
        MPI_Recv(other, MSG_MAX, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG,
                 pg.err_comm, MPI_STATUS_IGNORE);
        acks++; /* an ack, or a rank failing at the same time (which
                   will not answer) */
    }
    MPI_Abort(MPI_COMM_WORLD, 1);
    return CG_ERR_RUNTIME; /* not reached */
}

/* Polls a request to completion, probing the error channel meanwhile. */
static cg_status wait_request(MPI_Request *req)
{
    for (long spins = 0;; spins++) {
        int flag = 0;
        int rc = MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Test");
        if (flag)
            return CG_OK;
        cg_status st = poll_errors();
        if (st != CG_OK)
            return st;
        if (spins < 200) {
            sched_yield();
        } else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- init / finalize ---------------------------------------------------- */

cg_status cg_dist_init(int *argc, char ***argv)
{
    if (pg.initialized)
        return cg_error(CG_ERR_RUNTIME,
                        "trying to initialize the default process group "
                        "twice!");
    int inited = 0, rc;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS)
            return cg_error(CG_ERR_RUNTIME, "MPI_Init_thread failed (%d)", rc);
        pg.own_mpi = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm *comms[4] = {&pg.comm, &pg.scatter, &pg.gather, &pg.err_comm};
    for (int i = 0; i < 4; i++) {
        if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, comms[i])) != MPI_SUCCESS) {
            while (i-- > 0)
                MPI_Comm_free(comms[i]);
            return mpi_error(rc, "MPI_Comm_dup");
        }
        MPI_Comm_set_errhandler(*comms[i], MPI_ERRORS_RETURN);
    }
    pg.active = NULL;
    MPI_Comm_rank(pg.comm, &pg.rank);
    MPI_Comm_size(pg.comm, &pg.size);
    pg.broken = false;
    pg.comm_seconds = 0;
    pg.initialized = true;
    return CG_OK;
}

bool cg_dist_is_initialized(void)
{
    return pg.initialized;
}

int cg_dist_get_rank(void)
{
    return pg.initialized ? pg.rank : -1;
}

int cg_dist_get_world_size(void)
{
    return pg.initialized ? pg.size : -1;
}

cg_status cg_dist_finalize(void)
{
    if (!pg.initialized)
        return CG_OK;
    if (pg.broken)
        MPI_Abort(MPI_COMM_WORLD, 1);
    MPI_Comm_free(&pg.comm);
    MPI_Comm_free(&pg.scatter);
    MPI_Comm_free(&pg.gather);
    MPI_Comm_free(&pg.err_comm);
    pg.initialized = false;
    pg.rank = pg.size = -1;
    if (pg.own_mpi) {
        pg.own_mpi = false;
        int rc = MPI_Finalize();
        if (rc != MPI_SUCCESS)
            return cg_error(CG_ERR_RUNTIME, "MPI_Finalize failed (%d)", rc);
    }
    return CG_OK;
}

/* ---- byte collectives ----------------------------------------------------
 */

cg_status cg_dist_barrier(void)
{
    cg_status st = cg__dist_check();
    if (st != CG_OK)
        return st;
    double t0 = cg__dist_now();
    MPI_Request req;
    int rc = MPI_Ibarrier(pg.comm, &req);
    st = rc == MPI_SUCCESS ? wait_request(&req) : mpi_error(rc, "MPI_Ibarrier");
    pg.comm_seconds += cg__dist_now() - t0;
    return st;
}

static cg_status check_bytes(size_t bytes)
{
    if (bytes > INT_MAX)
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad: %zu bytes exceed one MPI message (INT_MAX)",
                        bytes);
    return CG_OK;
}

cg_status cg__dist_all_gather_bytes(const void *send, void *recv, size_t bytes)
{
    cg_status st = cg__dist_check();
    if (st != CG_OK || (st = check_bytes(bytes)) != CG_OK)
        return st;
    MPI_Request req;
    int rc = MPI_Iallgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes,
                            MPI_BYTE, pg.comm, &req);
    return rc == MPI_SUCCESS ? wait_request(&req)
                             : mpi_error(rc, "MPI_Iallgather");
}

cg_status cg__dist_broadcast_bytes(void *buf, size_t bytes, int root)
{
    cg_status st = cg__dist_check();
    if (st != CG_OK || (st = check_bytes(bytes)) != CG_OK)
        return st;
    MPI_Request req;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, pg.comm, &req);
    return rc == MPI_SUCCESS ? wait_request(&req) : mpi_error(rc, "MPI_Ibcast");
}

/* ---- tensors: broadcast and all-reduce -----------------------------------
 */

/* A contiguous private copy of t to communicate through, and the write of
 * its values back into t (under no_grad: not recorded, as in PyTorch). */
static cg_status write_back(cg_tensor *t, cg_tensor *c)
{
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_tensor_copy_(t, c);
    cg_set_grad_enabled(prev);
    return st;
}

cg_status cg_dist_broadcast(cg_tensor *t, int src)
{
    if (!t)
        return cg_error(CG_ERR_MISUSE, "tensor must not be NULL");
    cg_status st = cg__dist_check();
    if (st != CG_OK)
        return st;
    if (src < 0 || src >= pg.size)
        return cg_error(CG_ERR_RUNTIME, "invalid root rank: %d", src);
    cg_tensor *c = NULL;
    if ((st = cg_tensor_clone(t, &c)) != CG_OK)
        return st;
    double t0 = cg__dist_now();
    size_t bytes =
        (size_t)cg_tensor_numel(c) * cg_dtype_size(cg_tensor_dtype(c));
    st = cg__dist_broadcast_bytes(cg_tensor_data(c), bytes, src);
    pg.comm_seconds += cg__dist_now() - t0;
    if (st == CG_OK && pg.rank != src)
        st = write_back(t, c);
    cg_tensor_release(c);
    return st;
}

struct cg__dist_work {
    char *buf;     /* the caller's data, n elements */
    char *scratch; /* P copies of this rank's chunk */
    int *counts;   /* chunk lengths (elements), P of them */
    int *displs;   /* chunk starts (elements) */
    int *rcounts;  /* P times this rank's chunk length */
    int *rdispls;  /* 0, len, 2 len, ... */
    MPI_Datatype type;
    bool dbl; /* double elements (else float) */
    cg_reduce_op op;
    int state; /* 0 exchanging chunks, 1 gathering, 2 done */
    MPI_Request req;
    struct cg__dist_work *next; /* in pg.active */
};

/* acc = c_0 op c_1 op ... op c_{P-1}, in rank order, into buf's chunk:
 * one function per element type T. */
#define DEFINE_REDUCE_CHUNK(NAME, T)                                           \
    static void NAME(cg__dist_work *w)                                         \
    {                                                                          \
        int me = pg.rank, P = pg.size, len = w->counts[me];                    \
        const T *c = (const T *)w->scratch;                                    \
        T *acc = (T *)w->buf + w->displs[me];                                  \
        for (int i = 0; i < len; i++) {                                        \
            T a = c[i];                                                        \
            for (int r = 1; r < P; r++) {                                      \
                T x = c[(size_t)r * len + i];                                  \
                a = w->op == CG_REDUCE_MIN   ? (x < a ? x : a)                 \
                    : w->op == CG_REDUCE_MAX ? (x > a ? x : a)                 \
                                             : a + x;                          \
            }                                                                  \
            acc[i] = w->op == CG_REDUCE_AVG ? a / (T)P : a;                    \
        }                                                                      \
    }
DEFINE_REDUCE_CHUNK(reduce_chunk_f32, float)
DEFINE_REDUCE_CHUNK(reduce_chunk_f64, double)

static void reduce_chunk(cg__dist_work *w)
{
    if (w->dbl)
        reduce_chunk_f64(w);
    else
        reduce_chunk_f32(w);
}

bool cg__dist_work_free(cg__dist_work *w)
{
    if (!w)
        return true;
    if (w->state != 2)
        return false; /* MPI may still write the scratch: keep it */
    cg_free(w->scratch);
    cg_free(w->counts);
    cg_free(w->displs);
    cg_free(w->rcounts);
    cg_free(w->rdispls);
    cg_free(w);
    return true;
}

cg_status cg__dist_all_reduce_start(void *buf, int64_t n, cg_dtype dt,
                                    cg_reduce_op op, cg__dist_work **out)
{
    cg_status st = cg__dist_check();
    if (st != CG_OK)
        return st;
    if (dt != CG_FLOAT32 && dt != CG_FLOAT64)
        return cg_error(CG_ERR_RUNTIME, "cgrad all_reduce: unsupported dtype");
    if ((unsigned)op >= CG_REDUCE_OP_COUNT)
        return cg_error(CG_ERR_VALUE, "invalid ReduceOp %d", (int)op);
    int P = pg.size;
    if (n < 0 || n > INT_MAX)
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad all_reduce: %lld elements are too many for "
                        "one exchange",
                        (long long)n);
    cg__dist_work *w = cg_calloc(1, sizeof *w);
    if (!w)
        return cg_error(CG_ERR_NOMEM, "out of memory");
    w->buf = buf;
    w->dbl = dt == CG_FLOAT64;
    w->type = w->dbl ? MPI_DOUBLE : MPI_FLOAT;
    w->op = op;
    size_t el = w->dbl ? sizeof(double) : sizeof(float);
    w->counts = cg_calloc((size_t)P, sizeof(int));
    w->displs = cg_calloc((size_t)P, sizeof(int));
    w->rcounts = cg_calloc((size_t)P, sizeof(int));
    w->rdispls = cg_calloc((size_t)P, sizeof(int));
    if (!w->counts || !w->displs || !w->rcounts || !w->rdispls)
        goto nomem;
    for (int r = 0; r < P; r++) {
        int64_t a = n * r / P, b = n * (r + 1) / P;
        w->displs[r] = (int)a;
        w->counts[r] = (int)(b - a);
    }
    int len = w->counts[pg.rank];
    for (int r = 0; r < P; r++) {
        w->rcounts[r] = len;
        w->rdispls[r] = r * len;
    }
    if (!(w->scratch = cg_malloc((size_t)P * (size_t)(len ? len : 1) * el)))
        goto nomem;
    if (P == 1 || n == 0) { /* nothing to exchange */
        memcpy(w->scratch, w->buf + (size_t)w->displs[pg.rank] * el,
               (size_t)len * el);
        reduce_chunk(w);
        w->state = 2;
        *out = w;
        return CG_OK;
    }
    int rc =
        MPI_Ialltoallv(buf, w->counts, w->displs, w->type, w->scratch,
                       w->rcounts, w->rdispls, w->type, pg.scatter, &w->req);
    if (rc != MPI_SUCCESS) {
        w->state = 2;
        cg__dist_work_free(w);
        return mpi_error(rc, "MPI_Ialltoallv");
    }
    cg__dist_work **tail = &pg.active;
    while (*tail)
        tail = &(*tail)->next;
    *tail = w;
    *out = w;
    return CG_OK;
nomem:
    w->state = 2;
    cg__dist_work_free(w);
    return cg_error(CG_ERR_NOMEM, "out of memory");
}

/* Advances every all-reduce in flight. Collectives on one communicator
 * must be issued in the same order on every rank, so the phase-2
 * Iallgatherv calls go out in start order whatever order the phase-1
 * exchanges complete in: a work whose chunks have arrived waits for the
 * earlier ones to issue theirs. Finished works leave the list. */
static cg_status progress(void)
{
    bool blocked = false;
    for (cg__dist_work **p = &pg.active; *p;) {
        cg__dist_work *x = *p;
        if (x->state == 0 && blocked) {
            p = &x->next;
            continue;
        }
        int flag = 0;
        int rc = MPI_Test(&x->req, &flag, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS)
            return mpi_error(rc, "MPI_Test");
        if (!flag) {
            blocked = blocked || x->state == 0;
            p = &x->next;
            continue;
        }
        if (x->state == 0) {
            /* every rank's copy of my chunk is here: reduce, then share */
            reduce_chunk(x);
            rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, x->type, x->buf, x->counts,
                                 x->displs, x->type, pg.gather, &x->req);
            if (rc != MPI_SUCCESS)
                return mpi_error(rc, "MPI_Iallgatherv");
            x->state = 1;
            p = &x->next;
            continue;
        }
        x->state = 2;
        *p = x->next;
    }
    return CG_OK;
}

cg_status cg__dist_work_test(cg__dist_work *w, bool *done)
{
    *done = false;
    if (w->state < 2) {
        cg_status st = progress();
        if (st != CG_OK)
            return st;
    }
    if (w->state == 2) {
        *done = true;
        return CG_OK;
    }
    return poll_errors();
}

cg_status cg__dist_work_wait(cg__dist_work *w)
{
    for (long spins = 0;; spins++) {
        bool done = false;
        cg_status st = cg__dist_work_test(w, &done);
        if (st != CG_OK || done)
            return st;
        if (spins < 200) {
            sched_yield();
        } else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

cg_status cg_dist_all_reduce(cg_tensor *t, cg_reduce_op op)
{
    if (!t)
        return cg_error(CG_ERR_MISUSE, "tensor must not be NULL");
    cg_status st = cg__dist_check();
    if (st != CG_OK)
        return st;
    if ((unsigned)op >= CG_REDUCE_OP_COUNT)
        return cg_error(CG_ERR_VALUE, "invalid ReduceOp %d", (int)op);
    cg_dtype dt = cg_tensor_dtype(t);
    bool complex = cg_dtype_is_complex(dt);
    if (complex && (op == CG_REDUCE_MIN || op == CG_REDUCE_MAX))
        return cg_error(CG_ERR_RUNTIME,
                        "all_reduce does not support %s on complex tensors",
                        cg_reduce_op_name(op));
    cg_dtype real = dt == CG_COMPLEX64    ? CG_FLOAT32
                    : dt == CG_COMPLEX128 ? CG_FLOAT64
                                          : dt;
    cg_tensor *c = NULL;
    cg__dist_work *w = NULL;
    if ((st = cg_tensor_clone(t, &c)) != CG_OK)
        return st;
    double t0 = cg__dist_now();
    int64_t n = cg_tensor_numel(c) * (complex ? 2 : 1);
    if ((st = cg__dist_all_reduce_start(cg_tensor_data(c), n, real, op, &w)) ==
            CG_OK &&
        (st = cg__dist_work_wait(w)) == CG_OK)
        st = write_back(t, c);
    pg.comm_seconds += cg__dist_now() - t0;
    if (!cg__dist_work_free(w))
        c = NULL; /* in flight after an error: MPI may still write it */
    cg_tensor_release(c);
    return st;
}
