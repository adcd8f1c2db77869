/*
 * process_group_internal.h -- what ddp.c needs from process_group.c
 * beyond the public API: asynchronous deterministic all-reduces (PyTorch's
 * Work objects), byte collectives for metadata, and the communication
 * clock. Never installed.
 */
#ifndef CGRAD_PROCESS_GROUP_INTERNAL_H
#define CGRAD_PROCESS_GROUP_INTERNAL_H

#include "cgrad_distributed.h"

/** An all-reduce in flight over a caller-owned flat buffer. */
typedef struct cg__dist_work cg__dist_work;

/** Starts the deterministic all-reduce (reduce-scatter with the rank-order
 *  sum, then all-gather; see cgrad_distributed.h) of n elements of dt
 *  (float32 or float64) in buf, in place. buf must stay valid and
 *  untouched until the work is done. */
cg_status cg__dist_all_reduce_start(void *buf, int64_t n, cg_dtype dt,
                                    cg_reduce_op op, cg__dist_work **out);
/** Advances the work without blocking; *done is true once buf holds the
 *  result. */
cg_status cg__dist_work_test(cg__dist_work *w, bool *done);
/** Waits (polling the error channel) until the work is done. */
cg_status cg__dist_work_wait(cg__dist_work *w);
/** Frees a finished work. A work still in flight (after an error) cannot
 *  be cancelled: its scratch is kept (MPI may still write it) and the
 *  call returns false. NULL-safe (true). */
bool cg__dist_work_free(cg__dist_work *w);

/** Blocking (polling) collectives on bytes: every rank's `bytes` bytes
 *  from send into recv (world_size * bytes), and root's buf to all. */
cg_status cg__dist_all_gather_bytes(const void *send, void *recv, size_t bytes);
cg_status cg__dist_broadcast_bytes(void *buf, size_t bytes, int root);

/** The process group is usable: CG_OK, or RuntimeError (not initialised;
 *  a rank failed, with its message). Also polls the error channel. */
cg_status cg__dist_check(void);
/** Adds to the communication clock (cg_dist_comm_seconds). */
void cg__dist_add_comm_seconds(double s);
/** A monotonic clock in seconds. */
double cg__dist_now(void);

#endif /* CGRAD_PROCESS_GROUP_INTERNAL_H */
