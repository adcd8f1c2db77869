/*
 * cgrad_bench.c -- ConvTranspose3d timings on the workloads of
 * ../shared/BENCHMARKS.md, printed as the `RESULT ...` lines that
 * ../shared/perf-anchors/run.sh collects (CGRAD_BENCH=...), then as a
 * table. A benchmark program, not a test: it asserts nothing about time.
 *
 * Passes (as the anchors' torch_bench.py times them):
 *   fwd          the forward kernel (no graph)
 *   bwd_data     grad_input
 *   bwd_weights  grad_weight + grad_bias
 *   total        fwd + bwd_data + bwd_weights (sum of the three medians)
 *   fwd_bwd      one autograd step through the public API:
 *                y = cg_conv_transpose3d(x, w, b) with x, w, b requiring
 *                grad; cg_sum(y); cg_tensor_backward -- what a user pays
 * For float32/float64, fwd, bwd_data and bwd_weights call the fast kernels
 * directly, into preallocated outputs.
 *
 * complex64/complex128 have no kernels of their own: cg_conv_transpose3d
 * runs three real convolutions (Gauss's trick) built from public ops, so
 * every complex pass is timed through the public API:
 *   fwd          cg_conv_transpose3d(x, w, b) with grad mode off
 *                (cg_set_grad_enabled(false)), output released each call
 *   bwd_data     y = cg_conv_transpose3d(x, w, b) built once with only x
 *                requiring grad; each call sets x.grad to None
 *                (cg_tensor_zero_grad set_to_none) and runs
 *                cg_tensor_backward(y, gy, retain_graph=true)
 *   bwd_weights  the same with only w and b requiring grad
 *   total        fwd + bwd_data + bwd_weights (sum of the three medians)
 *   fwd_bwd      the same autograd step as for the real dtypes
 * Each complex backward also runs the graph's element-wise ops (real/imag
 * views, adds, subs, the 1j scaling), so bwd_data + bwd_weights pay them
 * twice and total can exceed fwd_bwd.
 * x, w, b, gy have random real and imaginary parts (cg_randn).
 *
 * Each figure is the median of 9 samples after a ~50 ms warm-up, a sample
 * repeating the call until it lasts >= ~20 ms. GFLOP/s counts
 * 2*N*Cin*D*H*W*(Cout/groups)*kD*kH*kW per pass (input spatial size), for
 * every dtype: complex passes count the same nominal FLOPs as real ones,
 * so complex64/float32 GFLOP/s is directly the ratio of
 * ../shared/BENCHMARKS.md's target (>= 1/4; float64/float32 >= 1/2).
 * A non-default dtype or --simd is appended to impl (impl=cgrad_complex64).
 *
 * usage: cgrad_bench [--threads T]
 *                    [--dtype float32|float64|complex64|complex128]
 *                    [--simd off|avx2|avx512] [--workload NAME]
 *                    [--pass PASS]   (only that pass: for profiling)
 *                    [--cpu-time]    (process CPU time instead of wall
 *                                     time: steadier on a busy machine,
 *                                     meaningful with one thread only)
 */
#define _POSIX_C_SOURCE 200809L

#include "cgrad.h"
#include "conv_internal.h"
#include "kernels/conv_transpose3d_fast.h"
#include "simd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct workload {
    const char *name;
    int64_t N, Cin, Cout, D, H, W, k, s, p, op, G;
} workload;

static const workload WLS[] = {
    {"A_unet_up_k2s2", 4, 32, 16, 16, 16, 16, 2, 2, 0, 0, 1},
    {"B_k3s2p1op1", 2, 16, 16, 16, 16, 16, 3, 2, 1, 1, 1},
    {"C_k3s1p1", 2, 16, 16, 16, 16, 16, 3, 1, 1, 0, 1},
    {"D_k4s2p1_g2", 2, 16, 32, 8, 8, 8, 4, 2, 1, 0, 2},
    {"E_small_c1", 1, 1, 3, 16, 16, 16, 3, 1, 0, 0, 1},
};
#define NWL ((int)(sizeof WLS / sizeof WLS[0]))

enum { FWD, BWD_DATA, BWD_WEIGHTS, TOTAL, FWD_BWD, NPASS };
static const char *const PASS[NPASS] = {"fwd", "bwd_data", "bwd_weights",
                                        "total", "fwd_bwd"};

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "cgrad_bench: %s: %s: %s\n", what,
            cg_status_name(cg_last_status()), cg_last_error());
    exit(1);
}
#define CHECK(expr)                                                            \
    do {                                                                       \
        if ((expr) != CG_OK)                                                   \
            die(#expr);                                                        \
    } while (0)

typedef struct bench_ctx {
    const workload *wl;
    cg_conv_geom g;
    cg_dtype dt;
    cg_tensor *x, *w, *b, *gy;   /* inputs */
    cg_tensor *y, *gx, *gw, *gb; /* kernel outputs */
    cg_tensor *xr, *wr, *br;     /* leaves requiring grad (fwd_bwd) */
    bool cplx;                   /* complex dtype: public API only */
    cg_tensor *yd, *yw;          /* complex: retained graphs of y for
                                    bwd_data (xr) and bwd_weights (wr, br) */
} bench_ctx;

static void conv(bench_ctx *c, cg_tensor *x, cg_tensor *w, cg_tensor *b,
                 cg_tensor **y)
{
    CHECK(cg_conv_transpose3d(x, w, b, CG_INT3(c->wl->s), CG_INT3(c->wl->p),
                              CG_INT3(c->wl->op), c->wl->G, CG_INT3(1), y));
}

/* The complex passes: the public API only (see the header comment). */
static void run_pass_complex(bench_ctx *c, int pass)
{
    switch (pass) {
    case FWD: {
        cg_tensor *y = NULL;
        bool prev = cg_set_grad_enabled(false);
        cg_status st = cg_conv_transpose3d(
            c->x, c->w, c->b, CG_INT3(c->wl->s), CG_INT3(c->wl->p),
            CG_INT3(c->wl->op), c->wl->G, CG_INT3(1), &y);
        cg_set_grad_enabled(prev);
        if (st != CG_OK)
            die("cg_conv_transpose3d (no grad)");
        cg_tensor_release(y);
        break;
    }
    case BWD_DATA:
        CHECK(cg_tensor_zero_grad(c->xr, true));
        CHECK(cg_tensor_backward(c->yd, c->gy, true));
        break;
    case BWD_WEIGHTS:
        CHECK(cg_tensor_zero_grad(c->wr, true));
        CHECK(cg_tensor_zero_grad(c->br, true));
        CHECK(cg_tensor_backward(c->yw, c->gy, true));
        break;
    default:
        break;
    }
}

static void run_pass(bench_ctx *c, int pass)
{
    const cg_conv_geom *g = &c->g;
    if (c->cplx && pass != FWD_BWD) {
        run_pass_complex(c, pass);
        return;
    }
    switch (pass) {
    case FWD:
        CHECK(cg__ct3d_fast_forward(g, c->dt, cg_tensor_data(c->x),
                                    cg_tensor_data(c->w), cg_tensor_data(c->b),
                                    cg_tensor_data(c->y)));
        break;
    case BWD_DATA:
        CHECK(cg__ct3d_fast_backward_input(g, c->dt, cg_tensor_data(c->gy),
                                           cg_tensor_data(c->w),
                                           cg_tensor_data(c->gx)));
        break;
    case BWD_WEIGHTS:
        CHECK(cg__ct3d_fast_backward(
            g, c->dt, cg_tensor_data(c->x), NULL, cg_tensor_data(c->gy), NULL,
            cg_tensor_data(c->gw), cg_tensor_data(c->gb)));
        break;
    case FWD_BWD: {
        cg_tensor *y, *s;
        CHECK(cg_tensor_zero_grad(c->xr, true));
        CHECK(cg_tensor_zero_grad(c->wr, true));
        CHECK(cg_tensor_zero_grad(c->br, true));
        conv(c, c->xr, c->wr, c->br, &y);
        CHECK(cg_sum(y, &s));
        CHECK(cg_tensor_backward(s, NULL, false));
        cg_tensor_release(s);
        cg_tensor_release(y);
        break;
    }
    default:
        break;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds per call: ~50 ms of warm-up, then 9 samples of >= ~20 ms. */
static double time_pass(bench_ctx *c, int pass)
{
    double t0 = now();
    int n = 0;
    while (n < 2 || now() - t0 < 0.05) {
        run_pass(c, pass);
        n++;
    }
    double per = (now() - t0) / n;
    int inner = per > 0.02 ? 1 : (int)(0.02 / per) + 1;
    enum { SAMPLES = 9 };
    double s[SAMPLES];
    for (int i = 0; i < SAMPLES; i++) {
        double a = now();
        for (int j = 0; j < inner; j++)
            run_pass(c, pass);
        s[i] = (now() - a) / inner;
    }
    qsort(s, SAMPLES, sizeof s[0], cmp_double);
    return s[SAMPLES / 2];
}

static cg_tensor *randn(const int64_t *shape, int ndim, cg_dtype dt)
{
    cg_tensor *t;
    CHECK(cg_randn(shape, ndim, dt, NULL, &t));
    return t;
}

static void setup(bench_ctx *c, const workload *wl, cg_dtype dt)
{
    memset(c, 0, sizeof *c);
    c->wl = wl;
    c->dt = dt;
    c->cplx = cg_dtype_is_complex(dt);
    cg_conv_geom *g = &c->g;
    *g = (cg_conv_geom){.N = wl->N,
                        .Cin = wl->Cin,
                        .Cout = wl->Cout,
                        .G = wl->G,
                        .in = {wl->D, wl->H, wl->W}};
    for (int a = 0; a < 3; a++) {
        g->k[a] = wl->k;
        g->s[a] = wl->s;
        g->p[a] = wl->p;
        g->op[a] = wl->op;
        g->d[a] = 1;
        if (!cg__ct3d_out_size(g->in[a], wl->k, wl->s, wl->p, wl->op, 1,
                               &g->out[a]))
            die("output size");
    }
    cg_manual_seed(0);
    int64_t xs[5] = {wl->N, wl->Cin, wl->D, wl->H, wl->W};
    int64_t ws[5] = {wl->Cin, wl->Cout / wl->G, wl->k, wl->k, wl->k};
    int64_t bs[1] = {wl->Cout};
    int64_t ys[5] = {wl->N, wl->Cout, g->out[0], g->out[1], g->out[2]};
    c->x = randn(xs, 5, dt);
    c->w = randn(ws, 5, dt);
    c->b = randn(bs, 1, dt);
    c->gy = randn(ys, 5, dt);
    if (!c->cplx) {
        CHECK(cg_empty(ys, 5, dt, &c->y));
        CHECK(cg_empty(xs, 5, dt, &c->gx));
        CHECK(cg_empty(ws, 5, dt, &c->gw));
        CHECK(cg_empty(bs, 1, dt, &c->gb));
    }
    CHECK(cg_tensor_detach(c->x, &c->xr));
    CHECK(cg_tensor_detach(c->w, &c->wr));
    CHECK(cg_tensor_detach(c->b, &c->br));
    CHECK(cg_tensor_requires_grad_(c->xr, true));
    CHECK(cg_tensor_requires_grad_(c->wr, true));
    CHECK(cg_tensor_requires_grad_(c->br, true));
    if (c->cplx) {
        conv(c, c->xr, c->w, c->b, &c->yd);
        conv(c, c->x, c->wr, c->br, &c->yw);
    }
}

static void teardown(bench_ctx *c)
{
    cg_tensor *all[] = {c->yd, c->yw, c->x,  c->w,  c->b,  c->gy, c->y,
                        c->gx, c->gw, c->gb, c->xr, c->wr, c->br};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        cg_tensor_release(all[i]);
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: cgrad_bench [--threads T]\n"
        "                   [--dtype float32|float64|complex64|complex128]\n"
        "                   [--simd off|avx2|avx512] [--workload NAME]\n"
        "                   [--pass fwd|bwd_data|bwd_weights|fwd_bwd] "
        "[--cpu-time]\n"
        "complex dtypes time every pass through the public API:\n"
        "  fwd          cg_conv_transpose3d with grad mode off\n"
        "  bwd_data     cg_tensor_backward(y, gy, retain_graph) on a graph\n"
        "               built once with only x requiring grad, x.grad set\n"
        "               to None before each call\n"
        "  bwd_weights  the same with only w and b requiring grad\n"
        "  total, fwd_bwd as for float32 (sum of three medians; one "
        "autograd step)\n"
        "GFLOP/s counts the same nominal FLOPs for every dtype.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int threads = 1;
    cg_dtype dt = CG_FLOAT32;
    const char *only = NULL;
    const char *simd_arg = NULL;
    int only_pass = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dtype") == 0 && i + 1 < argc) {
            const char *d = argv[++i];
            if (strcmp(d, "float32") == 0)
                dt = CG_FLOAT32;
            else if (strcmp(d, "float64") == 0)
                dt = CG_FLOAT64;
            else if (strcmp(d, "complex64") == 0)
                dt = CG_COMPLEX64;
            else if (strcmp(d, "complex128") == 0)
                dt = CG_COMPLEX128;
            else
                usage();
        } else if (strcmp(argv[i], "--simd") == 0 && i + 1 < argc) {
            cg_simd lv;
            simd_arg = argv[++i];
            if (!cg__simd_parse(simd_arg, &lv))
                usage();
            cg__simd_override(lv);
        } else if (strcmp(argv[i], "--workload") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (strcmp(argv[i], "--cpu-time") == 0) {
            bench_clock = CLOCK_PROCESS_CPUTIME_ID;
        } else if (strcmp(argv[i], "--pass") == 0 && i + 1 < argc) {
            const char *p = argv[++i];
            for (int k = 0; k < NPASS; k++)
                if (k != TOTAL && strcmp(p, PASS[k]) == 0)
                    only_pass = k;
            if (only_pass < 0)
                usage();
        } else {
            usage();
        }
    }
    if (threads < 1)
        usage();
    CHECK(cg_set_num_threads(threads));

    /* impl is "cgrad" for the default run; other options say so */
    char impl[64] = "cgrad";
    if (dt != CG_FLOAT32)
        snprintf(impl + strlen(impl), sizeof impl - strlen(impl), "_%s",
                 cg_dtype_name(dt));
    if (simd_arg)
        snprintf(impl + strlen(impl), sizeof impl - strlen(impl), "_%s",
                 cg__simd_name(cg__simd_level()));
    printf("# cgrad_bench: threads=%d dtype=%s simd=%s (cpu has %s)\n", threads,
           cg_dtype_name(dt), cg__simd_name(cg__simd_level()),
           cg__simd_name(cg__simd_detected()));

    double ms[NWL][NPASS], gf[NWL][NPASS];
    bool ran[NWL] = {false};
    for (int i = 0; i < NWL; i++) {
        const workload *wl = &WLS[i];
        if (only && strstr(wl->name, only) != wl->name)
            continue;
        bench_ctx c;
        setup(&c, wl, dt);
        double flop =
            2.0 * (double)(wl->N * wl->Cin * wl->D * wl->H * wl->W *
                           (wl->Cout / wl->G) * wl->k * wl->k * wl->k);
        double sec[NPASS];
        for (int p = 0; p < NPASS; p++) {
            if (p == TOTAL)
                continue;
            sec[p] = only_pass < 0 || only_pass == p ? time_pass(&c, p) : 0;
        }
        sec[TOTAL] = sec[FWD] + sec[BWD_DATA] + sec[BWD_WEIGHTS];
        for (int p = 0; p < NPASS; p++) {
            double f = p == TOTAL || p == FWD_BWD ? 3 * flop : flop;
            ms[i][p] = sec[p] * 1e3;
            gf[i][p] = f / sec[p] * 1e-9;
            printf("RESULT impl=%s threads=%d wl=%s pass=%s ms=%.4f "
                   "gflops=%.2f\n",
                   impl, threads, wl->name, PASS[p], ms[i][p], gf[i][p]);
            fflush(stdout);
        }
        ran[i] = true;
        teardown(&c);
    }

    printf("\n%s, %d thread%s, %s: ms / GFLOP/s (median)\n\n", impl, threads,
           threads == 1 ? "" : "s", cg_dtype_name(dt));
    printf("| workload | fwd | bwd_data | bwd_weights | total | fwd_bwd |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < NWL; i++) {
        if (!ran[i])
            continue;
        printf("| %s |", WLS[i].name);
        for (int p = 0; p < NPASS; p++)
            printf(" %.3g / %.1f |", ms[i][p], gf[i][p]);
        printf("\n");
    }
    return 0;
}
