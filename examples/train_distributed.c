/*
 * train_distributed.c -- data-parallel training across processes with
 * MPI: the model of examples/train_upsampler.c trained by N ranks at once,
 * the way PyTorch users do it with DistributedDataParallel:
 *
 *     dist.init_process_group("mpi")
 *     rank, world = dist.get_rank(), dist.get_world_size()
 *     model = nn.Sequential(nn.Conv3d(1, C, 3, stride=2, padding=1),
 *                           nn.ReLU(),
 *                           nn.ConvTranspose3d(C, 1, 4, stride=2, padding=1))
 *     model = DDP(model)              # rank 0's weights to everyone
 *     opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
 *     sched = CosineAnnealingLR(opt, T_max=epochs)
 *     sampler = DistributedSampler(dataset, world, rank, shuffle=True,
 *                                  seed=seed)
 *     loader = DataLoader(dataset, batch_size=batch, sampler=sampler)
 *     for epoch in range(epochs):
 *         sampler.set_epoch(epoch)
 *         for x, y in loader:
 *             opt.zero_grad()
 *             loss = loss_fn(model(x), y)
 *             loss.backward()         # gradients averaged over ranks
 *             opt.step()
 *         sched.step()
 *
 * The task is train_upsampler's denoising (noisy volumes of spheres and
 * cubes -> clean ones), with its data and model made by the same code,
 * denoising.c, which both examples share. Every rank makes the whole data
 * set from the same seed (it is small); the sampler gives each rank its
 * share, so one epoch covers the data set once across all ranks and
 * --batch is the per-rank batch (global batch = batch x ranks). Each rank
 * seeds its model differently on purpose: DDP's broadcast makes them all
 * rank 0's.
 *
 * Rank 0 prints the mean training loss of each epoch over all ranks, and
 * at the end the samples/s of the whole job and the share of the step
 * time each rank spent in the gradient all-reduce (copying gradients into
 * buckets, exchanging them, waiting, copying back). Each rank uses
 * max(1, cores / ranks on this machine) threads unless --threads says
 * otherwise.
 *
 * Errors: any failing call ends the whole job with cg_dist_abort: the
 * failing rank prints "[rank R] <message>", the others print "[rank R']
 * aborting: rank R failed: <message>", and mpirun exits nonzero within
 * seconds. --fail-rank R --fail-step S shows it: rank R feeds a 3-D
 * input at its step S: Conv3d's "Expected 4D (unbatched) or 5D
 * (batched) input to conv3d, ..." error.
 *
 * Usage: mpirun -np N train_distributed [options]
 *   --epochs N   (5)        --samples N  training volumes in all (96)
 *   --batch N    per rank (4)            --size S  volume edge, even (16)
 *   --channels C (16)       --lr X (0.01)   --noise X (0.1)   --seed N (1)
 *   --threads N  cgrad's threads per rank
 *   --steps N    stop after N steps (0: run every epoch)
 *   --fail-rank R --fail-step S   inject a bad input (see above)
 *   --dump FILE  rank 0 writes the final parameters as safetensors
 *   --short      8^3 volumes, 24 samples, batch 2, 4 channels, 2 epochs
 *
 * On one machine:       mpirun -np 2 ./build/examples/train_distributed
 * On several (hostfile): mpirun -np 4 --hostfile hosts ./train_distributed
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sysconf */
#include "cgrad_distributed.h"
#include "cgrad_optim.h"
#include "denoising.h" /* the data and the model, as train_upsampler.c */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct settings {
    int epochs, samples, batch, size, channels, threads, steps;
    int fail_rank, fail_step;
    double lr, noise;
    int seed;
    const char *dump;
} settings;

static int rank, world;

/* Any failure ends the job on every rank (see the top). */
#define TRY(expr)                                                              \
    do {                                                                       \
        cg_status st_ = (expr);                                                \
        if (st_ != CG_OK)                                                      \
            die(#expr, st_);                                                   \
    } while (0)

static void die(const char *what, cg_status st)
{
    char msg[2048];
    snprintf(msg, sizeof msg, "train_distributed: %s: %s: %s", what,
             cg_status_name(st), cg_last_error());
    cg_dist_abort(msg); /* does not return once MPI runs */
    exit(1);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- command line
 * ------------------------------------------------------------
 */

static bool int_arg(const char *opt, const char *v, long lo, long hi, int *out)
{
    char *end = NULL;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || errno || x < lo || x > hi) {
        if (rank == 0)
            fprintf(stderr,
                    "train_distributed: %s expects an integer in "
                    "[%ld, %ld]\n",
                    opt, lo, hi);
        return false;
    }
    *out = (int)x;
    return true;
}

static bool parse_args(int argc, char **argv, settings *s)
{
    *s = (settings){.epochs = 5,
                    .samples = 96,
                    .batch = 4,
                    .size = 16,
                    .channels = 16,
                    .lr = 0.01,
                    .noise = 0.1,
                    .seed = 1,
                    .fail_rank = -1,
                    .fail_step = -1};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--short") == 0) {
            s->epochs = 2;
            s->samples = 24;
            s->batch = 2;
            s->size = 8;
            s->channels = 4;
        }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--short") == 0)
            continue;
        if (strcmp(a, "--epochs") == 0)
            ok = int_arg(a, v, 1, 100000, &s->epochs);
        else if (strcmp(a, "--samples") == 0)
            ok = int_arg(a, v, 1, 1000000, &s->samples);
        else if (strcmp(a, "--batch") == 0)
            ok = int_arg(a, v, 1, 100000, &s->batch);
        else if (strcmp(a, "--size") == 0)
            ok = int_arg(a, v, 4, 256, &s->size) && s->size % 2 == 0;
        else if (strcmp(a, "--channels") == 0)
            ok = int_arg(a, v, 1, 1024, &s->channels);
        else if (strcmp(a, "--threads") == 0)
            ok = int_arg(a, v, 1, 1024, &s->threads);
        else if (strcmp(a, "--steps") == 0)
            ok = int_arg(a, v, 0, 100000000, &s->steps);
        else if (strcmp(a, "--seed") == 0)
            ok = int_arg(a, v, 0, 1000000, &s->seed);
        else if (strcmp(a, "--fail-rank") == 0)
            ok = int_arg(a, v, 0, 1000000, &s->fail_rank);
        else if (strcmp(a, "--fail-step") == 0)
            ok = int_arg(a, v, 0, 100000000, &s->fail_step);
        else if (strcmp(a, "--lr") == 0 || strcmp(a, "--noise") == 0) {
            char *end = NULL;
            double x = v ? strtod(v, &end) : 0;
            ok = v && !*end && x >= 0 && x <= 10;
            *(a[2] == 'l' ? &s->lr : &s->noise) = x;
        } else if (strcmp(a, "--dump") == 0) {
            ok = v != NULL;
            s->dump = v;
        } else {
            ok = false;
        }
        if (!ok) {
            if (rank == 0)
                fprintf(stderr,
                        "train_distributed: bad option '%s' (see the "
                        "top of examples/train_distributed.c)\n",
                        a);
            return false;
        }
        i++;
    }
    return true;
}

/* Threads per rank: max(1, cores / ranks on this machine). Open MPI and
 * MPICH say how many ranks share the node; otherwise assume all do. */
static int default_threads(void)
{
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!local)
        local = getenv("MPI_LOCALNRANKS");
    int ranks = local ? atoi(local) : world;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int t = ranks > 0 ? (int)(cores / ranks) : 1;
    return t < 1 ? 1 : t;
}

/* The mean over ranks of a per-rank number (deterministic all-reduce). */
static double mean_over_ranks(double v)
{
    int64_t one = 1;
    cg_tensor *t = NULL;
    TRY(cg_tensor_from_data(&v, &one, 1, CG_FLOAT64, &t));
    TRY(cg_dist_all_reduce(t, CG_REDUCE_AVG));
    double r = *(const double *)cg_tensor_data(t);
    cg_tensor_release(t);
    return r;
}

/* ---- main: the training loop
 * ---------------------------------------------------
 */

int main(int argc, char **argv)
{
    if (cg_dist_init(&argc, &argv) != CG_OK) {
        fprintf(stderr, "train_distributed: %s\n", cg_last_error());
        return 1;
    }
    rank = cg_dist_get_rank();
    world = cg_dist_get_world_size();
    settings s;
    if (!parse_args(argc, argv, &s)) {
        cg_dist_finalize();
        return 2;
    }
    TRY(cg_set_num_threads(s.threads ? s.threads : default_threads()));
    const int S = s.size;

    /* the data set, identical on every rank */
    cg_generator *data_gen = NULL;
    cg_tensor *noisy = NULL, *clean = NULL;
    TRY(cg_generator_new((uint64_t)s.seed, &data_gen));
    TRY(denoising_make_data(data_gen, s.samples, S, s.noise, &noisy, &clean));

    /* a different init per rank on purpose: DDP broadcasts rank 0's */
    cg_manual_seed((uint64_t)s.seed + 1000u * (uint64_t)rank);
    cg_module *model = NULL;
    TRY(denoising_make_model(s.channels, &model));
    cg_ddp *ddp = NULL;
    cg_ddp_options dopt = cg_ddp_defaults();
    TRY(cg_ddp_new(model, &dopt, &ddp));

    int np = cg_module_num_parameters(model);
    cg_tensor *params[8];
    int64_t nweights = 0;
    for (int i = 0; i < np && i < 8; i++) {
        TRY(cg_module_named_parameter(model, i, NULL, &params[i]));
        nweights += cg_tensor_numel(params[i]);
    }
    cg_module *loss_fn = NULL;
    cg_optimizer *opt = NULL;
    cg_lr_scheduler *sched = NULL;
    TRY(cg_mse_loss_new(NULL, &loss_fn));
    cg_adamw_options ao = cg_adamw_defaults();
    ao.lr = s.lr;
    TRY(cg_adamw_new(params, np, &ao, &opt));
    cg_cosine_annealing_lr_options co =
        cg_cosine_annealing_lr_defaults(s.epochs);
    TRY(cg_cosine_annealing_lr_new(opt, &co, &sched));

    /* DistributedSampler + DataLoader(sampler=...) */
    cg_distributed_sampler *sampler = NULL;
    cg_distributed_sampler_options so =
        cg_distributed_sampler_defaults(world, rank);
    so.seed = s.seed;
    TRY(cg_distributed_sampler_new(s.samples, &so, &sampler));
    cg_dataloader_options lo = cg_dataloader_defaults();
    lo.batch_size = s.batch;
    lo.sampler = sampler;
    cg_dataloader *loader = NULL;
    cg_tensor *dataset[2] = {noisy, clean};
    TRY(cg_dataloader_new(dataset, 2, &lo, &loader));

    if (rank == 0) {
        printf("train_distributed: %d ranks x %d threads, denoising %d^3 "
               "volumes\n",
               world, cg_get_num_threads(), S);
        printf("model: Conv3d(1, %d, 3, s2, p1) -> ReLU -> ConvTranspose3d(%d, "
               "1, 4, s2, p1), %lld parameters in %d bucket(s)\n",
               s.channels, s.channels, (long long)nweights,
               cg_ddp_num_buckets(ddp));
        printf("data: %d volumes, %lld per rank per epoch, batch %d per rank "
               "(%d global); AdamW lr %g + CosineAnnealingLR(T_max=%d)\n",
               s.samples, (long long)cg_distributed_sampler_len(sampler),
               s.batch, s.batch * world, s.lr, s.epochs);
        fflush(stdout);
    }

    TRY(cg_dist_barrier());
    double t_start = now_seconds(), step_time = 0, comm_time = 0;
    long step = 0, samples_done = 0;
    bool stop = false;
    for (int epoch = 0; epoch < s.epochs && !stop; epoch++) {
        cg_distributed_sampler_set_epoch(sampler, epoch);
        double sum = 0;
        long seen = 0;
        for (;;) {
            cg_tensor *batch[2] = {NULL, NULL}, *pred = NULL, *loss = NULL;
            bool has = false;
            TRY(cg_dataloader_next(loader, batch, &has));
            if (!has)
                break;
            if (rank == s.fail_rank && step == s.fail_step) {
                /* a malformed input: one volume without its batch and
                 * channel axes, (S, S, S) */
                cg_tensor *one = NULL, *bad = NULL;
                TRY(cg_tensor_select(batch[0], 0, 0, &one));
                TRY(cg_tensor_select(one, 0, 0, &bad));
                cg_tensor_release(one);
                cg_tensor_release(batch[0]);
                batch[0] = bad;
            }
            double t0 = now_seconds(), c0 = cg_dist_comm_seconds(), v = 0;
            TRY(cg_optimizer_zero_grad(opt, false));
            TRY(cg_ddp_forward(ddp, batch[0], &pred));
            TRY(cg_loss_forward(loss_fn, pred, batch[1], &loss));
            TRY(cg_tensor_item(loss, &v, NULL));
            TRY(cg_tensor_backward(loss, NULL, false));
            TRY(cg_optimizer_step(opt));
            step_time += now_seconds() - t0;
            comm_time += cg_dist_comm_seconds() - c0;
            int64_t b = cg_tensor_shape(batch[0])[0];
            sum += v * (double)b;
            seen += (long)b;
            cg_tensor_release(loss);
            cg_tensor_release(pred);
            cg_tensor_release(batch[0]);
            cg_tensor_release(batch[1]);
            step++;
            if (s.steps && step >= s.steps) {
                stop = true;
                cg_dataloader_reset(loader);
                break;
            }
        }
        double lr = 0;
        TRY(cg_optimizer_get_lr(opt, 0, &lr));
        TRY(cg_lr_scheduler_step(sched));
        samples_done += seen * world;
        double mean = mean_over_ranks(seen ? sum / (double)seen : 0);
        if (rank == 0) {
            printf("epoch %2d/%d  loss %.6g  lr %.3e\n", epoch + 1, s.epochs,
                   mean, lr);
            fflush(stdout);
        }
    }
    TRY(cg_dist_barrier());
    double t_train = now_seconds() - t_start;
    double share = mean_over_ranks(step_time > 0 ? comm_time / step_time : 0);
    if (rank == 0) {
        printf("%ld steps, %ld samples in %.2f s: %.1f samples/s; gradient "
               "all-reduce %.1f%% of the step time (mean over ranks)\n",
               step, samples_done, t_train, (double)samples_done / t_train,
               100 * share);
        if (s.dump) {
            TRY(cg_module_save_safetensors(model, s.dump));
            printf("wrote %s\n", s.dump);
        }
    }
    cg_dataloader_free(loader);
    cg_distributed_sampler_free(sampler);
    cg_lr_scheduler_free(sched);
    cg_optimizer_free(opt);
    cg_module_free(loss_fn);
    cg_ddp_free(ddp);
    cg_module_free(model);
    cg_tensor_release(noisy);
    cg_tensor_release(clean);
    cg_generator_free(data_gen);
    TRY(cg_dist_finalize());
    return 0;
}
