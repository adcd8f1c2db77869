/*
 * soak.c -- the soak run of issue 9: many training steps of the upsampler
 * model with the process's resident memory sampled, to show that nothing
 * grows after warm-up (no leak, no unbounded cache).
 *
 * Model: Sequential(Conv3d(1, C, 3, stride 2, padding 1), ReLU,
 * ConvTranspose3d(C, 1, 4, stride 2, padding 1)), MSELoss, AdamW (lr 1e-3).
 * Data: a fixed batch (N, 1, S, S, S) of randn and a target that is a
 * smoothed copy of it (so the loss falls). Every step is the full loop:
 * zero_grad, forward, loss, backward, step.
 *
 * Resident memory is read from /proc/self/statm (its second field, in
 * pages) every `every` steps and printed; at the end the RSS at the first
 * sample (step `every`) and the last are compared. Exit status 1 when the
 * growth is above 1%. Run it from a build without sanitizers: ASan's
 * quarantine holds freed memory back on purpose, so RSS grows there.
 *
 * Usage: soak [steps=2000] [every=100] [C=32] [S=32] [N=2] (the example's
 * channels and volume edge, a batch of 2)
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, sysconf */
#include "cgrad.h"
#include "cgrad_nn.h"
#include "cgrad_optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, resident = 0;
    int got = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (got != 2)
        return -1;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CHECK(expr)                                                            \
    do {                                                                       \
        cg_status st_ = (expr);                                                \
        if (st_ != CG_OK) {                                                    \
            fprintf(stderr, "soak: %s: %s: %s\n", #expr, cg_status_name(st_),  \
                    cg_last_error());                                          \
            return 2;                                                          \
        }                                                                      \
    } while (0)

static long arg(int argc, char **argv, int i, long dflt)
{
    return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
    long steps = arg(argc, argv, 1, 2000), every = arg(argc, argv, 2, 100);
    long C = arg(argc, argv, 3, 32), S = arg(argc, argv, 4, 32),
         N = arg(argc, argv, 5, 2);
    if (steps < 1 || every < 1 || every > steps || C < 1 || S < 2 || N < 1) {
        fprintf(stderr, "usage: soak [steps] [every] [C] [S] [N]\n");
        return 2;
    }

    cg_manual_seed(0);
    cg_module *model = NULL, *conv = NULL, *relu = NULL, *convt = NULL,
              *mse = NULL;
    cg_conv3d_opts co = cg_conv3d_options(1, C, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(C, 1, CG_INT3(4));
    to.stride = CG_INT3(2);
    to.padding = CG_INT3(1);
    CHECK(cg_sequential_new(&model));
    CHECK(cg_conv3d_new(&co, &conv));
    CHECK(cg_relu_new(&relu));
    CHECK(cg_conv_transpose3d_new(&to, &convt));
    CHECK(cg_sequential_append(model, conv));
    CHECK(cg_sequential_append(model, relu));
    CHECK(cg_sequential_append(model, convt));
    cg_module_free(conv);
    cg_module_free(relu);
    cg_module_free(convt);
    CHECK(cg_mse_loss_new("mean", &mse));

    const int64_t shape[5] = {N, 1, S, S, S};
    cg_tensor *x = NULL, *target = NULL, *box = NULL;
    CHECK(cg_randn(shape, 5, CG_FLOAT32, NULL, &x));
    /* the target: x smoothed by a 3x3x3 box filter (same size) */
    const int64_t wshape[5] = {1, 1, 3, 3, 3};
    CHECK(cg_full(wshape, 5, 1.0 / 27.0, CG_FLOAT32, &box));
    CHECK(cg_conv3d(x, box, NULL, CG_INT3(1), CG_INT3(1), CG_INT3(1), 1,
                    &target));
    cg_tensor_release(box);

    int np = cg_module_num_parameters(model);
    cg_tensor *params[8];
    for (int i = 0; i < np; i++)
        CHECK(cg_module_named_parameter(model, i, NULL, &params[i]));
    cg_adamw_options o = cg_adamw_defaults();
    cg_optimizer *opt = NULL;
    CHECK(cg_adamw_new(params, np, &o, &opt));

    printf("soak: %ld steps of Sequential(Conv3d(1, %ld, 3, s2, p1), ReLU, "
           "ConvTranspose3d(%ld, 1, 4, s2, p1)), MSELoss, AdamW; input "
           "(%ld, 1, %ld, %ld, %ld); %d threads\n",
           steps, C, C, N, S, S, S, cg_get_num_threads());
    long first_rss = -1, last_rss = -1, first_step = 0;
    double first_loss = 0, loss_v = 0, t0 = now();
    for (long k = 1; k <= steps; k++) {
        cg_tensor *y = NULL, *loss = NULL;
        double im;
        CHECK(cg_optimizer_zero_grad(opt, true));
        CHECK(cg_module_forward(model, x, &y));
        CHECK(cg_loss_forward(mse, y, target, &loss));
        CHECK(cg_tensor_item(loss, &loss_v, &im));
        CHECK(cg_tensor_backward(loss, NULL, false));
        CHECK(cg_optimizer_step(opt));
        cg_tensor_release(loss);
        cg_tensor_release(y);
        if (k == 1)
            first_loss = loss_v;
        if (k % every == 0) {
            long rss = rss_kib();
            if (first_rss < 0) {
                first_rss = rss;
                first_step = k;
            }
            last_rss = rss;
            printf("step %5ld  loss %.6f  rss %ld KiB  (%.1f s)\n", k, loss_v,
                   rss, now() - t0);
            fflush(stdout);
        }
    }
    double growth = 100.0 * (double)(last_rss - first_rss) / (double)first_rss;
    printf("soak: loss %.6f -> %.6f; rss at step %ld: %ld KiB, at step %ld: "
           "%ld KiB, growth %+ld KiB (%+.2f%%) in %.1f s\n",
           first_loss, loss_v, first_step, first_rss, steps, last_rss,
           last_rss - first_rss, growth, now() - t0);

    cg_optimizer_free(opt);
    cg_module_free(model);
    cg_module_free(mse);
    cg_tensor_release(x);
    cg_tensor_release(target);
    if (first_rss <= 0 || growth > 1.0 || growth < -1.0) {
        printf("soak: FAIL: resident memory changed by more than 1%%\n");
        return 1;
    }
    return 0;
}
