/*
 * cgrad_distributed.h -- torch.distributed and DistributedDataParallel for
 * cgrad, over MPI: data-parallel training across processes.
 *
 * An optional part (library cgrad_distributed), built when CMake finds an
 * MPI implementation; the core library never depends on MPI. Start one
 * process per rank with mpirun:
 *
 *     mpirun -np 2 ./train_distributed
 *
 * and in each (PyTorch's lines on the right):
 *
 *     cg_dist_init(&argc, &argv);       // dist.init_process_group("mpi")
 *     int rank = cg_dist_get_rank();    // dist.get_rank()
 *     cg_ddp *ddp = NULL;               // model = DDP(model)
 *     cg_ddp_options o = cg_ddp_defaults();
 *     cg_ddp_new(model, &o, &ddp);
 *     ...                               // for each step:
 *     cg_ddp_forward(ddp, x, &pred);    //   pred = model(x)
 *     cg_tensor_backward(loss, ...);    //   loss.backward() (averages
 *     cg_optimizer_step(opt);           //   the grads)  opt.step()
 *     ...
 *     cg_ddp_free(ddp);
 *     cg_dist_finalize();               // dist.destroy_process_group()
 *
 * Determinism. Floating-point sums are never left to MPI (MPI_SUM's order
 * is the implementation's): an all-reduce splits the buffer into
 * world_size chunks, rank r receives chunk r from every rank and adds the
 * contributions in rank order 0, 1, ..., N-1, and the reduced chunks are
 * then gathered to everyone (reduce-scatter + all-gather). Every element
 * is summed in the same order on every run and every rank, so a run with
 * N ranks gives bitwise the same result each time and on each rank.
 *
 * Errors that end the job. A rank that cannot go on calls
 * cg_dist_abort(message): it prints "[rank R] message" to stderr, sends
 * the message to every other rank on a private communicator, waits up to
 * 2 s for their acknowledgements and ends the job with MPI_Abort (exit
 * code 1). Every blocking wait of this library polls that channel, so a
 * rank waiting in an all-reduce, broadcast or barrier prints "[rank R']
 * aborting: rank R failed: message", acknowledges, and its call returns
 * CG_ERR_RUNTIME "rank R failed: message" (and so does every later call:
 * the world is broken; cg_dist_finalize then aborts instead of
 * finalizing). The job ends within seconds, with the message on every
 * rank, instead of hanging.
 *
 * Threads: MPI is initialised with MPI_THREAD_FUNNELED; every call here
 * (and every backward of a wrapped model) must come from the thread that
 * called cg_dist_init. cgrad's own worker threads never call MPI.
 */
#ifndef CGRAD_DISTRIBUTED_H
#define CGRAD_DISTRIBUTED_H

#include "cgrad_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Process group (torch.distributed)
 * ====================================================================== */

/** dist.init_process_group(backend="mpi"): initialises MPI (unless the
 *  program already did; then cg_dist_finalize leaves MPI_Finalize to it)
 *  and the process group of every rank. argc/argv may be NULL. Errors:
 *  RuntimeError "trying to initialize the default process group twice!",
 *  RuntimeError for an MPI failure (its MPI error string). */
CG_API cg_status cg_dist_init(int *argc, char ***argv);
/** dist.is_initialized(). */
CG_API bool cg_dist_is_initialized(void);
/** dist.get_rank() / dist.get_world_size(); -1 before cg_dist_init. */
CG_API int cg_dist_get_rank(void);
CG_API int cg_dist_get_world_size(void);
/** dist.barrier(). */
CG_API cg_status cg_dist_barrier(void);
/** dist.broadcast(t, src): t (same shape and dtype on every rank) gets
 *  rank src's values, in place, whether or not it requires grad (the
 *  write is not recorded by autograd, as in PyTorch). RuntimeError
 *  "invalid root rank: 5" (the words of PyTorch's Gloo backend) for a
 *  bad src. */
CG_API cg_status cg_dist_broadcast(cg_tensor *t, int src);

/** dist.ReduceOp. Values are fixed; new ones are only appended. */
typedef enum cg_reduce_op {
    CG_REDUCE_SUM = 0, /* sum in rank order 0..N-1 */
    CG_REDUCE_AVG = 1, /* that sum divided by the world size */
    CG_REDUCE_MIN = 2,
    CG_REDUCE_MAX = 3,
    CG_REDUCE_OP_COUNT
} cg_reduce_op;
/** "SUM", "AVG", "MIN", "MAX" ("unknown" out of range). */
CG_API const char *cg_reduce_op_name(cg_reduce_op op);
/** dist.all_reduce(t, op): in place, deterministic (see the top of this
 *  file). float32, float64 and complex (SUM/AVG: real and imaginary parts
 *  separately; MIN/MAX need a real dtype). Same shape and dtype on every
 *  rank. */
CG_API cg_status cg_dist_all_reduce(cg_tensor *t, cg_reduce_op op);
/** Ends the job from this rank: see "Errors that end the job" above.
 *  Does not return once MPI is initialised (before cg_dist_init it prints
 *  the message and returns CG_ERR_RUNTIME). */
CG_API cg_status cg_dist_abort(const char *message);
/** dist.destroy_process_group() and MPI_Finalize (when cg_dist_init
 *  initialised MPI). On a broken world (a rank failed) it calls MPI_Abort
 *  instead, which ends the process. NULL-safe in spirit: a no-op before
 *  init. */
CG_API cg_status cg_dist_finalize(void);
/** Seconds this process spent inside the library's communication waits
 *  (all-reduce, broadcast, barrier, DDP's gradient exchange) since init:
 *  what the example reports as the all-reduce share. */
CG_API double cg_dist_comm_seconds(void);

/* ======================================================================
 * DistributedDataParallel (torch.nn.parallel.DistributedDataParallel)
 * ====================================================================== */

typedef struct cg_ddp cg_ddp;

/** The constructor arguments of DDP that apply to CPU processes. */
typedef struct cg_ddp_options {
    bool broadcast_buffers; /* true: buffers from rank 0 before forward */
    double bucket_cap_mb;   /* 25: bucket size cap (MiB); the first bucket
                               (the last parameters' gradients, reduced
                               first) is capped at 1 MiB, as in PyTorch */
} cg_ddp_options;
CG_API cg_ddp_options cg_ddp_defaults(void);

/** DistributedDataParallel(module): on every rank, with the same model.
 *  Checks across ranks, before anything is sent, that every rank has the
 *  same number of parameters, shapes and dtypes (all ranks fail together
 *  with the message of the first rank that differs:
 *  RuntimeError "DDP expects same model across all ranks, but Rank 1 has
 *  3 params, while rank 0 has inconsistent 4 params.", "params[2]
 *  (\"2.weight\") in this process with sizes [8, 1, 4, 4, 4] appears not
 *  to match sizes of the same param in process 0.", "... with dtype
 *  torch.float64 appears not to match dtype ..."), then broadcasts the
 *  parameters and persistent buffers from rank 0 (so every rank starts
 *  equal without a shared seed), forms the gradient buckets (PyTorch's
 *  rule: parameter order, grouped by dtype, the first bucket capped at 1
 *  MiB and the others at bucket_cap_mb, reduced last bucket first) and
 *  registers a post-accumulate-grad hook on every parameter. During each
 *  backward, a bucket whose gradients are all ready starts its exchange
 *  while backward goes on (buckets start in a fixed order on every rank);
 *  when the last is ready, all are awaited and each .grad holds the
 *  average over ranks (each gradient is multiplied by 1/world_size as it
 *  is copied into its bucket, as PyTorch does, then summed in rank
 *  order). The module is borrowed and must outlive the wrapper.
 *  RuntimeError "DistributedDataParallel is not needed when a module
 *  doesn't have any parameter that requires a gradient.", "Default
 *  process group has not been initialized, please make sure to call
 *  init_process_group.". */
CG_API cg_status cg_ddp_new(cg_module *module, const cg_ddp_options *opts,
                            cg_ddp **out);
/** Removes the hooks and frees the wrapper (not the module). NULL-safe. */
CG_API void cg_ddp_free(cg_ddp *ddp);
/** The wrapped module (ddp.module), borrowed. */
CG_API cg_module *cg_ddp_module(const cg_ddp *ddp);
/** ddp(input): checks that the previous iteration's reduction finished
 *  (otherwise PyTorch's RuntimeError "Expected to have finished reduction
 *  in the prior iteration before starting a new one. This error indicates
 *  that your module has parameters that were not used in producing loss.
 *  ... Parameter indices which did not receive grad for rank 0: 1 3 ..."),
 *  syncs buffers from rank 0 when asked, and runs the module's forward. */
CG_API cg_status cg_ddp_forward(cg_ddp *ddp, cg_tensor *input, cg_tensor **out);
/** ddp.require_backward_grad_sync (what `with ddp.no_sync():` clears):
 *  while false, backward only accumulates locally. */
CG_API void cg_ddp_set_require_backward_grad_sync(cg_ddp *ddp, bool sync);
/** Number of gradient buckets and the parameter indices of bucket b in
 *  the order they are laid out (for tests and curiosity); NULL/-1 for a
 *  bad b. */
CG_API int cg_ddp_num_buckets(const cg_ddp *ddp);
CG_API const int *cg_ddp_bucket(const cg_ddp *ddp, int b, int *count);

#ifdef __cplusplus
}
#endif

#endif /* CGRAD_DISTRIBUTED_H */
