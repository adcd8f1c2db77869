/* test_conv_fast.c -- the fast ConvTranspose3d kernels
 * (core/kernels/conv_transpose3d_fast.c) against the reference kernels of
 * conv_internal.h: the 42 golden cases (also against PyTorch's values) and
 * 300 random configurations (odd sizes, strides, paddings, dilations,
 * groups, output_padding including op >= s with op < d, float32 and
 * float64), on every instruction-set path this CPU has and on the forced
 * portable one; and, for each path, outputs and gradients bitwise
 * identical for 1, 2, 3 and 8 threads. The forward is the reference's
 * bits (PyTorch's order of rounding) on every path. Also: 60 conv3d
 * geometries (the adjoint the same kernels serve), and the public ops
 * (conv_transpose3d, conv3d with autograd) thread-count independent. Timing is
 * the benchmark program's business (bench/cgrad_bench), never a test's. */
#include "conv_internal.h"
#include "kernels/conv_transpose3d_fast.h"
#include "simd_internal.h"
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CONV_TRANSPOSE3D.md section 2.4: float32 sums agree to rounding in any
 * order; float64 is tight. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static const int thread_counts[] = {1, 2, 3, 8};
#define NTHREADS ((int)(sizeof thread_counts / sizeof thread_counts[0]))

typedef struct conv_case {
    cg_conv_geom g;
    cg_dtype dt;
    bool bias;
    /* inputs */
    void *x, *w, *b, *gy;
} conv_case;

typedef struct results {
    void *y, *gx, *gw, *gb;
} results;

static int64_t prod3(const int64_t *v)
{
    return v[0] * v[1] * v[2];
}
static int64_t n_x(const cg_conv_geom *g)
{
    return g->N * g->Cin * prod3(g->in);
}
static int64_t n_y(const cg_conv_geom *g)
{
    return g->N * g->Cout * prod3(g->out);
}
static int64_t n_w(const cg_conv_geom *g)
{
    return g->Cin * (g->Cout / g->G) * prod3(g->k);
}

static void *xalloc(int64_t n, cg_dtype dt)
{
    void *p = malloc((size_t)(n > 0 ? n : 1) * cg_dtype_size(dt));
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fill_nan(void *p, int64_t n, cg_dtype dt)
{
    for (int64_t i = 0; i < n; i++)
        if (dt == CG_FLOAT32)
            ((float *)p)[i] = NAN;
        else
            ((double *)p)[i] = NAN;
}

static double get(const void *p, int64_t i, cg_dtype dt)
{
    return dt == CG_FLOAT32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

static void results_alloc(results *r, const conv_case *c)
{
    r->y = xalloc(n_y(&c->g), c->dt);
    r->gx = xalloc(n_x(&c->g), c->dt);
    r->gw = xalloc(n_w(&c->g), c->dt);
    r->gb = xalloc(c->g.Cout, c->dt);
}
static void results_free(results *r)
{
    free(r->y);
    free(r->gx);
    free(r->gw);
    free(r->gb);
}

/* |got - ref| <= tol * max(1, max|ref|) */
static void assert_close(const void *got, const void *ref, int64_t n,
                         cg_dtype dt, const char *what, const char *name)
{
    double tol = dt == CG_FLOAT32 ? TOL_F32 : TOL_F64, scale = 1.0, worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(get(ref, i, dt)));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(get(got, i, dt) - get(ref, i, dt));
        if (!(d <= worst)) { /* NaN counts as worst */
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    ck_assert_msg(worst <= tol * scale,
                  "%s: %s differs by %g at %lld (got %.9g, want %.9g, "
                  "scale %g, simd %s, threads %d)",
                  name, what, worst, (long long)at,
                  at >= 0 ? get(got, at, dt) : 0.0,
                  at >= 0 ? get(ref, at, dt) : 0.0, scale,
                  cg__simd_name(cg__simd_level()), cg_get_num_threads());
}

static void assert_bitwise(const void *got, const void *ref, int64_t n,
                           cg_dtype dt, const char *what, const char *name)
{
    ck_assert_msg(memcmp(got, ref, (size_t)n * cg_dtype_size(dt)) == 0,
                  "%s: %s differs between 1 and %d threads (simd %s)", name,
                  what, cg_get_num_threads(), cg__simd_name(cg__simd_level()));
}

static void run_reference(const conv_case *c, results *r)
{
    const cg_conv_geom *g = &c->g;
    tu_ok(cg__ct3d_ref_forward(g, c->dt, c->x, c->w, c->bias ? c->b : NULL,
                               r->y));
    tu_ok(cg__ct3d_ref_backward_input(g, c->dt, c->gy, c->w, r->gx));
    tu_ok(cg__ct3d_ref_backward_weight(g, c->dt, c->x, c->gy, r->gw));
    tu_ok(cg__ct3d_ref_backward_bias(g, c->dt, c->gy, r->gb));
}

/* The fast kernels; every output starts as NaN, so an element a kernel
 * forgets to write shows. `separate` uses the one-gradient entry points
 * instead of the shared backward. */
static void run_fast(const conv_case *c, results *r, bool separate)
{
    const cg_conv_geom *g = &c->g;
    fill_nan(r->y, n_y(g), c->dt);
    fill_nan(r->gx, n_x(g), c->dt);
    fill_nan(r->gw, n_w(g), c->dt);
    fill_nan(r->gb, g->Cout, c->dt);
    tu_ok(cg__ct3d_fast_forward(g, c->dt, c->x, c->w, c->bias ? c->b : NULL,
                                r->y));
    if (separate) {
        tu_ok(cg__ct3d_fast_backward_input(g, c->dt, c->gy, c->w, r->gx));
        tu_ok(cg__ct3d_fast_backward_weight(g, c->dt, c->x, c->gy, r->gw));
        tu_ok(cg__ct3d_fast_backward_bias(g, c->dt, c->gy, r->gb));
    } else {
        tu_ok(cg__ct3d_fast_backward(g, c->dt, c->x, c->w, c->gy, r->gx, r->gw,
                                     r->gb));
    }
}

/* Every path, every thread count: close to the reference with one
 * thread, bitwise equal to that with the others. */
static void check_case(const conv_case *c, const results *ref, const char *name)
{
    const cg_conv_geom *g = &c->g;
    const int saved_threads = cg_get_num_threads();
    results base, r;
    results_alloc(&base, c);
    results_alloc(&r, c);
    for (int lv = CG_SIMD_PORTABLE; lv <= (int)cg__simd_detected(); lv++) {
        cg_simd prev = cg__simd_override((cg_simd)lv);
        ck_assert_int_eq(cg__simd_level(), lv);
        for (int ti = 0; ti < NTHREADS; ti++) {
            tu_ok(cg_set_num_threads(thread_counts[ti]));
            results *out = ti == 0 ? &base : &r;
            run_fast(c, out, ti % 2 == 1);
            if (ti == 0) {
                /* the forward rounds in PyTorch's order, as the
                 * reference does: the same bits on every path */
                ck_assert_msg(memcmp(out->y, ref->y,
                                     (size_t)n_y(g) * cg_dtype_size(c->dt)) ==
                                  0,
                              "%s: output is not the reference's bits "
                              "(simd %s)",
                              name, cg__simd_name(cg__simd_level()));
                assert_close(out->gx, ref->gx, n_x(g), c->dt, "grad_input",
                             name);
                assert_close(out->gw, ref->gw, n_w(g), c->dt, "grad_weight",
                             name);
                assert_close(out->gb, ref->gb, g->Cout, c->dt, "grad_bias",
                             name);
            } else {
                assert_bitwise(out->y, base.y, n_y(g), c->dt, "output", name);
                assert_bitwise(out->gx, base.gx, n_x(g), c->dt, "grad_input",
                               name);
                assert_bitwise(out->gw, base.gw, n_w(g), c->dt, "grad_weight",
                               name);
                assert_bitwise(out->gb, base.gb, g->Cout, c->dt, "grad_bias",
                               name);
            }
        }
        cg__simd_override(prev);
    }
    tu_ok(cg_set_num_threads(saved_threads));
    results_free(&base);
    results_free(&r);
}

/* ======================================================================
 * golden: the 42 cases of tests/data/golden (PyTorch 1.13)
 * ====================================================================== */

#define GOLDEN "golden/cases.tsv"

/* Field `col` (0-based) of data row `row` (1-based) of the case table,
 * into buf. */
static void tsv_field(const char *text, int row, int col, char *buf,
                      size_t size)
{
    const char *p = text;
    for (int r = 0; r < row; r++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    for (int c = 0; c < col; c++) {
        p = strpbrk(p, "\t\n");
        ck_assert_msg(p && *p == '\t', "row %d has no column %d", row, col);
        p++;
    }
    size_t n = strcspn(p, "\t\n");
    ck_assert_uint_lt(n, size);
    memcpy(buf, p, n);
    buf[n] = '\0';
}

static int tsv_rows(const char *text)
{
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    return lines - 1; /* the header */
}

static int parse_ints(const char *s, int64_t *v, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        v[n++] = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s != ',')
            break;
    }
    return n;
}

static int column(const char *text, const char *name)
{
    char buf[64];
    for (int c = 0;; c++) {
        tsv_field(text, 0, c, buf, sizeof buf);
        if (strcmp(buf, name) == 0)
            return c;
    }
}

static void *tensor_copy(const char *dir, const char *file, int64_t n,
                         cg_dtype dt)
{
    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/%s", dir, file);
    cg_tensor *t = tu_load(rel);
    ck_assert_int_eq(cg_tensor_dtype(t), dt);
    ck_assert_int_eq(cg_tensor_numel(t), n);
    ck_assert(cg_tensor_is_contiguous(t));
    void *p = xalloc(n, dt);
    memcpy(p, cg_tensor_data(t), (size_t)n * cg_dtype_size(dt));
    cg_tensor_release(t);
    return p;
}

START_TEST(test_golden)
{
    char *text = tu_read_text(tu_data_path(GOLDEN));
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(tsv_rows(text), 42);
    const int row = _i + 1;
    char name[128], buf[128];
    tsv_field(text, row, column(text, "name"), name, sizeof name);
    conv_case c;
    memset(&c, 0, sizeof c);
    tsv_field(text, row, column(text, "dtype"), buf, sizeof buf);
    c.dt = strcmp(buf, "float64") == 0 ? CG_FLOAT64 : CG_FLOAT32;
    int64_t v[8];
    tsv_field(text, row, column(text, "kernel_size"), buf, sizeof buf);
    ck_assert_int_eq(parse_ints(buf, c.g.k, 3), 3);
    tsv_field(text, row, column(text, "stride"), buf, sizeof buf);
    ck_assert_int_eq(parse_ints(buf, c.g.s, 3), 3);
    tsv_field(text, row, column(text, "padding"), buf, sizeof buf);
    ck_assert_int_eq(parse_ints(buf, c.g.p, 3), 3);
    tsv_field(text, row, column(text, "dilation"), buf, sizeof buf);
    ck_assert_int_eq(parse_ints(buf, c.g.d, 3), 3);
    tsv_field(text, row, column(text, "effective_output_padding"), buf,
              sizeof buf);
    ck_assert_int_eq(parse_ints(buf, c.g.op, 3), 3);
    tsv_field(text, row, column(text, "groups"), buf, sizeof buf);
    c.g.G = strtoll(buf, NULL, 10);
    tsv_field(text, row, column(text, "bias"), buf, sizeof buf);
    c.bias = strcmp(buf, "1") == 0;
    tsv_field(text, row, column(text, "input_shape"), buf, sizeof buf);
    int nd = parse_ints(buf, v, 5);
    ck_assert(nd == 4 || nd == 5);
    c.g.N = nd == 5 ? v[0] : 1;
    c.g.Cin = v[nd - 4];
    memcpy(c.g.in, v + nd - 3, sizeof c.g.in);
    tsv_field(text, row, column(text, "output_shape"), buf, sizeof buf);
    ck_assert_int_eq(parse_ints(buf, v, 5), nd);
    c.g.Cout = v[nd - 4];
    memcpy(c.g.out, v + nd - 3, sizeof c.g.out);
    free(text);

    c.x = tensor_copy(name, "input.npy", n_x(&c.g), c.dt);
    c.w = tensor_copy(name, "weight.npy", n_w(&c.g), c.dt);
    c.b = c.bias ? tensor_copy(name, "bias.npy", c.g.Cout, c.dt) : NULL;
    c.gy = tensor_copy(name, "grad_output.npy", n_y(&c.g), c.dt);

    results ref;
    results_alloc(&ref, &c);
    run_reference(&c, &ref);
    /* the reference itself against PyTorch's values, so a shared mistake
     * in the geometry cannot pass unseen */
    void *want = tensor_copy(name, "output.npy", n_y(&c.g), c.dt);
    assert_close(ref.y, want, n_y(&c.g), c.dt, "reference output", name);
    free(want);
    want = tensor_copy(name, "grad_input.npy", n_x(&c.g), c.dt);
    assert_close(ref.gx, want, n_x(&c.g), c.dt, "reference grad_input", name);
    free(want);
    want = tensor_copy(name, "grad_weight.npy", n_w(&c.g), c.dt);
    assert_close(ref.gw, want, n_w(&c.g), c.dt, "reference grad_weight", name);
    free(want);

    check_case(&c, &ref, name);
    results_free(&ref);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.gy);
}
END_TEST

/* ======================================================================
 * random configurations
 * ====================================================================== */

#define N_RANDOM 300

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int64_t rng_int(uint64_t *s, int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}
static void *rng_fill(uint64_t *s, int64_t n, cg_dtype dt)
{
    void *p = xalloc(n, dt);
    for (int64_t i = 0; i < n; i++) {
        double v = (double)(rng_next(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0;
        if (dt == CG_FLOAT32)
            ((float *)p)[i] = (float)v;
        else
            ((double *)p)[i] = v;
    }
    return p;
}

static void describe(const conv_case *c, const char *name)
{
    const cg_conv_geom *g = &c->g;
    printf("%s: %s N=%lld Cin=%lld Cout=%lld G=%lld bias=%d in=%lld,%lld,%lld "
           "out=%lld,%lld,%lld k=%lld,%lld,%lld s=%lld,%lld,%lld "
           "p=%lld,%lld,%lld op=%lld,%lld,%lld d=%lld,%lld,%lld\n",
           name, cg_dtype_name(c->dt), (long long)g->N, (long long)g->Cin,
           (long long)g->Cout, (long long)g->G, c->bias, (long long)g->in[0],
           (long long)g->in[1], (long long)g->in[2], (long long)g->out[0],
           (long long)g->out[1], (long long)g->out[2], (long long)g->k[0],
           (long long)g->k[1], (long long)g->k[2], (long long)g->s[0],
           (long long)g->s[1], (long long)g->s[2], (long long)g->p[0],
           (long long)g->p[1], (long long)g->p[2], (long long)g->op[0],
           (long long)g->op[1], (long long)g->op[2], (long long)g->d[0],
           (long long)g->d[1], (long long)g->d[2]);
}

/* A random valid geometry: small, with every kind of argument. Some
 * configurations repeat one value on all axes (the int form), others
 * differ per axis (triples); W is sometimes long enough for several
 * vectors and tails. */
static void random_case(int idx, conv_case *c)
{
    uint64_t s = 0x5eed0000ull + (uint64_t)idx;
    memset(c, 0, sizeof *c);
    cg_conv_geom *g = &c->g;
    c->dt = idx % 2 ? CG_FLOAT64 : CG_FLOAT32;
    c->bias = rng_int(&s, 0, 3) != 0;
    g->G = rng_int(&s, 1, 4) == 4 ? rng_int(&s, 2, 3) : 1;
    g->Cin = g->G * rng_int(&s, 1, 5);
    g->Cout = g->G * rng_int(&s, 1, 6);
    g->N = rng_int(&s, 1, 2);
    bool same = rng_int(&s, 0, 2) == 0;
    for (int a = 0; a < 3; a++) {
        if (same && a > 0) {
            g->k[a] = g->k[0];
            g->s[a] = g->s[0];
            g->d[a] = g->d[0];
            g->p[a] = g->p[0];
            g->op[a] = g->op[0];
        } else {
            g->k[a] = rng_int(&s, 1, 4);
            g->s[a] = rng_int(&s, 1, 3);
            g->d[a] = rng_int(&s, 1, 3);
            g->p[a] = rng_int(&s, 0, 3);
            /* output_padding < max(s, d): op >= s happens when d > s */
            int64_t opmax = (g->s[a] > g->d[a] ? g->s[a] : g->d[a]) - 1;
            g->op[a] = rng_int(&s, 0, opmax);
        }
        int64_t hi = a == 2 ? (rng_int(&s, 0, 3) == 0 ? 37 : 9) : 5;
        g->in[a] = rng_int(&s, 1, hi);
        /* the output must not be empty: lower the padding if needed */
        for (;;) {
            int64_t o;
            ck_assert(cg__ct3d_out_size(g->in[a], g->k[a], g->s[a], g->p[a],
                                        g->op[a], g->d[a], &o));
            if (o > 0) {
                g->out[a] = o;
                break;
            }
            g->p[a]--;
        }
    }
    c->x = rng_fill(&s, n_x(g), c->dt);
    c->w = rng_fill(&s, n_w(g), c->dt);
    c->b = rng_fill(&s, g->Cout, c->dt);
    c->gy = rng_fill(&s, n_y(g), c->dt);
}

START_TEST(test_random)
{
    /* each loop iteration checks a slice of the configurations, so a
     * failure names the case while the fork overhead stays small */
    const int per = N_RANDOM / 10;
    for (int idx = _i * per; idx < (_i + 1) * per; idx++) {
        conv_case c;
        random_case(idx, &c);
        char name[64];
        snprintf(name, sizeof name, "random %d", idx);
        if (getenv("CG_FAST_VERBOSE"))
            describe(&c, name);
        results ref;
        results_alloc(&ref, &c);
        run_reference(&c, &ref);
        check_case(&c, &ref, name);
        results_free(&ref);
        free(c.x);
        free(c.w);
        free(c.b);
        free(c.gy);
    }
}
END_TEST

/* One geometry, per axis, on every path and thread count. */
typedef struct shape {
    int64_t N, Cin, Cout, G, in[3], k[3], s[3], p[3], op[3], d[3];
} shape;

static void check_shape(const shape *sh, cg_dtype dt, uint64_t seed,
                        const char *name)
{
    conv_case c;
    memset(&c, 0, sizeof c);
    c.dt = dt;
    c.bias = true;
    c.g = (cg_conv_geom){
        .N = sh->N, .Cin = sh->Cin, .Cout = sh->Cout, .G = sh->G};
    for (int a = 0; a < 3; a++) {
        c.g.in[a] = sh->in[a];
        c.g.k[a] = sh->k[a];
        c.g.s[a] = sh->s[a];
        c.g.p[a] = sh->p[a];
        c.g.op[a] = sh->op[a];
        c.g.d[a] = sh->d[a];
        ck_assert(cg__ct3d_out_size(sh->in[a], sh->k[a], sh->s[a], sh->p[a],
                                    sh->op[a], sh->d[a], &c.g.out[a]));
    }
    c.x = rng_fill(&seed, n_x(&c.g), c.dt);
    c.w = rng_fill(&seed, n_w(&c.g), c.dt);
    c.b = rng_fill(&seed, c.g.Cout, c.dt);
    c.gy = rng_fill(&seed, n_y(&c.g), c.dt);
    results ref;
    results_alloc(&ref, &c);
    run_reference(&c, &ref);
    check_case(&c, &ref, name);
    results_free(&ref);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.gy);
}

#define ALL3(v)                                                                \
    {                                                                          \
        v, v, v                                                                \
    }

/* The benchmark's shapes (smaller batch) on every path: the long rows,
 * stride-2 interleave and channel blocks the workloads take. */
START_TEST(test_workload_shapes)
{
    static const shape w[] = {
        /* A_unet_up_k2s2 */
        {1, 32, 16, 1, ALL3(8), ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        /* B_k3s2p1op1 */
        {1, 16, 16, 1, ALL3(8), ALL3(3), ALL3(2), ALL3(1), ALL3(1), ALL3(1)},
        /* C_k3s1p1 */
        {1, 16, 16, 1, ALL3(8), ALL3(3), ALL3(1), ALL3(1), ALL3(0), ALL3(1)},
        /* D_k4s2p1_g2 */
        {2, 16, 32, 2, ALL3(5), ALL3(4), ALL3(2), ALL3(1), ALL3(0), ALL3(1)},
        /* E_small_c1 */
        {1, 1, 3, 1, ALL3(16), ALL3(3), ALL3(1), ALL3(0), ALL3(0), ALL3(1)},
    };
    check_shape(&w[_i / 2], _i % 2 ? CG_FLOAT64 : CG_FLOAT32, 77 + (uint64_t)_i,
                "workload shape");
}
END_TEST

/* The paths that read gy unsplit. Backward-data folds W's two taps into
 * the lanes when along W k = s = 2, p = 0, d = 1 and along D and H every
 * tap of every input row lands inside gy: shapes that take it -- whole
 * vectors of 16 and 8, row tails, one input channel per group (MR = 1),
 * a partial channel block, other kernels, strides and dilations along D
 * and H, output_padding -- and near misses that must not. Backward-weights
 * folds them too whenever W has k = s = 2, p = 0, d = 1 and no
 * output_padding, whatever D and H have (padding, dilation,
 * output_padding). With s = 1, p = 0 and no output_padding along H and W
 * a split row is gy's own plane, and both backward passes read gy where
 * it is (backward-data only with no D padding and whole vectors along
 * W). */
START_TEST(test_lane_shapes)
{
    /* N, Cin, Cout, G, in, k, s, p, output_padding, dilation */
    /* clang-format off */
    static const shape w[] = {
        /* W: k = s = 2, p = 0, d = 1 */
        {1, 8, 5, 1, {3, 4, 16}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        {2, 6, 4, 1, {2, 3, 13}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        {1, 2, 6, 2, {3, 2, 24}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        {1, 4, 4, 1, {3, 3, 8}, {3, 1, 2}, {2, 1, 2}, ALL3(0), {1, 0, 1}, {2, 1, 1}},
        {1, 5, 3, 1, {2, 2, 40}, {1, 3, 2}, {1, 3, 2}, ALL3(0), {0, 2, 1}, {1, 2, 1}},
        /* folded in backward-weights only: D and H padding, dilation and
         * output_padding; two output channels (MR = 1), a row shorter
         * than a vector */
        {1, 4, 4, 1, {3, 3, 8}, {3, 3, 2}, {2, 1, 2}, {1, 1, 0}, {1, 0, 0}, {2, 2, 1}},
        {2, 3, 2, 1, {2, 3, 5}, {2, 3, 2}, {2, 2, 2}, {0, 1, 0}, {1, 1, 0}, ALL3(1)},
        /* near misses: H padding, W padding, W dilation */
        {1, 3, 2, 1, {2, 3, 9}, ALL3(2), ALL3(2), {0, 1, 0}, {0, 1, 0}, ALL3(1)},
        {1, 3, 2, 1, {2, 3, 9}, ALL3(2), ALL3(2), {0, 0, 1}, {0, 0, 1}, ALL3(1)},
        {1, 3, 2, 1, {2, 3, 9}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), {1, 1, 2}},
        /* H and W: s = 1, p = 0, no output_padding */
        {2, 5, 6, 1, {3, 4, 16}, ALL3(3), {2, 1, 1}, ALL3(0), {1, 0, 0}, ALL3(1)},
        {1, 4, 3, 1, {3, 3, 8}, {2, 3, 2}, ALL3(1), ALL3(0), ALL3(0), {1, 2, 2}},
        /* near misses for backward-data: D padding, a row tail; and for
         * both: output_padding along H */
        {1, 2, 4, 2, {4, 2, 8}, ALL3(3), ALL3(1), {1, 0, 0}, ALL3(0), ALL3(1)},
        {1, 3, 5, 1, {2, 3, 11}, ALL3(2), ALL3(1), ALL3(0), ALL3(0), ALL3(1)},
        {1, 3, 3, 1, {2, 3, 8}, ALL3(2), ALL3(1), ALL3(0), {0, 1, 0}, ALL3(2)},
    };
    /* clang-format on */
    check_shape(&w[_i / 2], _i % 2 ? CG_FLOAT64 : CG_FLOAT32,
                0x1a9e + (uint64_t)_i, "lane shape");
}
END_TEST

/* Backward-weights' fold path (W: k = s = 2, p = 0, d = 1, no
 * output_padding) where its walk has more to get right: more tiles than
 * a chunk holds at once (BW_TILES = 128, so x2 is made again per group of
 * tiles), also with one D-tap per chunk (3 and 8 threads) and MR = 1;
 * groups; partial channel blocks; D and H padding, dilation and
 * output_padding (also >= the stride); rows of one, two and a part of a
 * vector; several position blocks per sample; an H-tap that never reaches
 * gy; and a near miss whose x2 would be too large to fold. */
START_TEST(test_fold_shapes)
{
    /* N, Cin, Cout, G, in, k, s, p, output_padding, dilation */
    /* clang-format off */
    static const shape w[] = {
        {2, 18, 6, 1, {3, 3, 5}, {7, 7, 2}, {1, 1, 2}, {2, 3, 0}, ALL3(0), ALL3(1)},
        {1, 120, 5, 1, {2, 7, 3}, {3, 7, 2}, {1, 1, 2}, {1, 2, 0}, ALL3(0), ALL3(1)},
        {1, 36, 3, 1, {3, 3, 4}, {7, 7, 2}, {1, 1, 2}, {3, 3, 0}, ALL3(0), ALL3(1)},
        {2, 36, 10, 2, {2, 3, 6}, {7, 7, 2}, {1, 1, 2}, {3, 3, 0}, ALL3(0), ALL3(1)},
        {2, 18, 8, 1, {2, 3, 13}, {7, 7, 2}, {1, 1, 2}, {3, 3, 0}, ALL3(0), ALL3(1)},
        {2, 7, 9, 1, {4, 3, 16}, {3, 3, 2}, {2, 3, 2}, {2, 1, 0}, {2, 1, 0}, {3, 2, 1}},
        {1, 9, 12, 3, {3, 4, 13}, {2, 3, 2}, {3, 1, 2}, {0, 2, 0}, {1, 0, 0}, {2, 2, 1}},
        {2, 8, 4, 1, {9, 16, 32}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        {3, 5, 7, 1, {11, 1, 1}, {3, 1, 2}, {2, 1, 2}, {1, 0, 0}, {1, 0, 0}, {2, 1, 1}},
        {1, 13, 34, 1, {2, 3, 7}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
        {1, 4, 4, 1, {3, 2, 6}, {2, 5, 2}, {2, 3, 2}, {0, 3, 0}, ALL3(0), ALL3(1)},
        {1, 6, 5, 1, {3, 2, 8}, {3, 2, 2}, {1, 2, 2}, ALL3(0), {1, 1, 0}, {2, 3, 1}},
        /* near miss: x2 of one input D-row is 512 KiB in float32 */
        {1, 64, 4, 1, {1, 32, 32}, ALL3(2), ALL3(2), ALL3(0), ALL3(0), ALL3(1)},
    };
    /* clang-format on */
    check_shape(&w[_i / 2], _i % 2 ? CG_FLOAT64 : CG_FLOAT32,
                0xf01d + (uint64_t)_i, "fold shape");
}
END_TEST

/* ======================================================================
 * conv3d: the same kernels on the adjoint geometries
 * ====================================================================== */

#define N_CONV3D 60

/* A random conv3d z = conv3d(u, v, s, p, d, G) as the transposed geometry
 * convolution.c gives the kernels: Cin = K, Cout = C, in = Z, out = U.
 * Unlike the transposed convolution's own, its padding may exceed the
 * kernel's extent and U need not be the smallest output for Z. Then
 * x = grad z, w = v, gy = u, so check_case covers z (grad_input), grad u
 * (output) and grad v (grad_weight). */
static void conv3d_case(int idx, conv_case *c)
{
    uint64_t s = 0xc3d00000ull + (uint64_t)idx;
    memset(c, 0, sizeof *c);
    cg_conv_geom *g = &c->g;
    c->dt = idx % 2 ? CG_FLOAT64 : CG_FLOAT32;
    c->bias = false;
    g->G = rng_int(&s, 1, 3) == 3 ? rng_int(&s, 2, 3) : 1;
    g->Cout = g->G * rng_int(&s, 1, 5); /* conv3d's input channels C */
    g->Cin = g->G * rng_int(&s, 1, 5);  /* conv3d's output channels K */
    g->N = rng_int(&s, 1, 2);
    for (int a = 0; a < 3; a++) {
        g->k[a] = rng_int(&s, 1, 4);
        g->s[a] = rng_int(&s, 1, 3);
        g->d[a] = rng_int(&s, 1, 3);
        g->p[a] = rng_int(&s, 0, 4);
        int64_t hi = a == 2 ? (rng_int(&s, 0, 3) == 0 ? 40 : 9) : 6;
        g->out[a] = rng_int(&s, 1, hi); /* conv3d's input size U */
        int64_t ext = g->d[a] * (g->k[a] - 1) + 1;
        while (g->out[a] + 2 * g->p[a] < ext)
            g->p[a]++;
        ck_assert(cg__conv3d_out_size(g->out[a], g->k[a], g->s[a], g->p[a],
                                      g->d[a], &g->in[a]));
        int64_t min;
        ck_assert(cg__ct3d_out_size(g->in[a], g->k[a], g->s[a], g->p[a], 0,
                                    g->d[a], &min));
        g->op[a] = g->out[a] - min;
        ck_assert(g->op[a] >= 0 && g->op[a] < g->s[a]);
    }
    c->x = rng_fill(&s, n_x(g), c->dt);
    c->w = rng_fill(&s, n_w(g), c->dt);
    c->b = rng_fill(&s, g->Cout, c->dt);
    c->gy = rng_fill(&s, n_y(g), c->dt);
}

START_TEST(test_conv3d_random)
{
    const int per = N_CONV3D / 6;
    for (int idx = _i * per; idx < (_i + 1) * per; idx++) {
        conv_case c;
        conv3d_case(idx, &c);
        char name[64];
        snprintf(name, sizeof name, "conv3d %d", idx);
        if (getenv("CG_FAST_VERBOSE"))
            describe(&c, name);
        results ref;
        results_alloc(&ref, &c);
        run_reference(&c, &ref);
        check_case(&c, &ref, name);
        results_free(&ref);
        free(c.x);
        free(c.w);
        free(c.b);
        free(c.gy);
    }
}
END_TEST

/* ======================================================================
 * the ops: F.conv_transpose3d and F.conv3d with autograd run these
 * kernels, thread-count independent end to end
 * ====================================================================== */

typedef struct op_run {
    cg_tensor *y, *gx, *gw, *gb;
} op_run;

static void op_run_free(op_run *r)
{
    cg_tensor_release(r->y);
    cg_tensor_release(r->gx);
    cg_tensor_release(r->gw);
    cg_tensor_release(r->gb);
}

static cg_tensor *leaf_copy(cg_tensor *t)
{
    cg_tensor *c;
    tu_ok(cg_tensor_detach(t, &c));
    cg_tensor *d;
    tu_ok(cg_tensor_clone(c, &d));
    cg_tensor_release(c);
    tu_ok(cg_tensor_requires_grad_(d, true));
    return d;
}

/* The transposed convolution's geometry from x's and y's 5-d shapes and
 * the op's arguments. */
static cg_conv_geom op_geom(const int64_t *xs, const int64_t *ys,
                            const int64_t *k, const int64_t *st,
                            const int64_t *pad, const int64_t *op,
                            const int64_t *dil, int64_t groups)
{
    cg_conv_geom g = {.N = xs[0], .Cin = xs[1], .Cout = ys[1], .G = groups};
    memcpy(g.in, xs + 2, sizeof g.in);
    memcpy(g.out, ys + 2, sizeof g.out);
    memcpy(g.k, k, sizeof g.k);
    memcpy(g.s, st, sizeof g.s);
    memcpy(g.p, pad, sizeof g.p);
    memcpy(g.op, op, sizeof g.op);
    memcpy(g.d, dil, sizeof g.d);
    return g;
}

/* y = op(x, w, b); y.backward(gy); the results and the three grads. */
static void op_step(bool transposed, cg_tensor *x0, cg_tensor *w0,
                    cg_tensor *b0, cg_tensor *gy, const int64_t *st,
                    const int64_t *pad, const int64_t *op, const int64_t *dil,
                    int64_t groups, op_run *r)
{
    cg_tensor *x = leaf_copy(x0), *w = leaf_copy(w0), *b = leaf_copy(b0);
    cg_ints S = {3, {st[0], st[1], st[2]}}, P = {3, {pad[0], pad[1], pad[2]}},
            O = {3, {op[0], op[1], op[2]}}, D = {3, {dil[0], dil[1], dil[2]}};
    if (transposed)
        tu_ok(cg_conv_transpose3d(x, w, b, S, P, O, groups, D, &r->y));
    else
        tu_ok(cg_conv3d(x, w, b, S, P, D, groups, &r->y));
    tu_ok(cg_tensor_backward(r->y, gy, false));
    r->gx = cg_tensor_retain(cg_tensor_grad(x));
    r->gw = cg_tensor_retain(cg_tensor_grad(w));
    r->gb = cg_tensor_retain(cg_tensor_grad(b));
    ck_assert_ptr_nonnull(r->gx);
    ck_assert_ptr_nonnull(r->gw);
    ck_assert_ptr_nonnull(r->gb);
    cg_tensor_release(x);
    cg_tensor_release(w);
    cg_tensor_release(b);
}

START_TEST(test_op_threads)
{
    /* _i: 0, 1 transposed (float32, float64); 2, 3 conv3d */
    const bool transposed = _i < 2;
    const cg_dtype dt = _i % 2 ? CG_FLOAT64 : CG_FLOAT32;
    const int64_t k[3] = {3, 2, 3}, st[3] = {2, 1, 2}, pad[3] = {1, 0, 1},
                  op[3] = {1, 0, 0}, dil[3] = {1, 2, 1}, G = 2;
    const int64_t Cx = 4, Cy = 6; /* channels of x and of w.size(1)*G */
    int64_t xs[5] = {2, Cx, 5, 6, 19};
    int64_t ws[5];
    if (transposed) {
        int64_t w5[5] = {Cx, Cy / G, k[0], k[1], k[2]};
        memcpy(ws, w5, sizeof ws);
    } else {
        int64_t w5[5] = {Cy, Cx / G, k[0], k[1], k[2]};
        memcpy(ws, w5, sizeof ws);
    }
    int64_t bs[1] = {Cy};
    cg_manual_seed(5 + (uint64_t)_i);
    cg_tensor *x, *w, *b, *gy = NULL;
    tu_ok(cg_randn(xs, 5, dt, NULL, &x));
    tu_ok(cg_randn(ws, 5, dt, NULL, &w));
    tu_ok(cg_randn(bs, 1, dt, NULL, &b));
    const int saved = cg_get_num_threads();
    op_run base = {0};
    for (int lv = CG_SIMD_PORTABLE; lv <= (int)cg__simd_detected(); lv++) {
        cg_simd prev = cg__simd_override((cg_simd)lv);
        for (int ti = 0; ti < NTHREADS; ti++) {
            tu_ok(cg_set_num_threads(thread_counts[ti]));
            op_run r = {0};
            if (!gy) {
                /* the first run (portable, 1 thread) fixes gy's shape */
                cg_tensor *y0;
                cg_ints S = {3, {st[0], st[1], st[2]}},
                        P = {3, {pad[0], pad[1], pad[2]}},
                        O = {3, {op[0], op[1], op[2]}},
                        D = {3, {dil[0], dil[1], dil[2]}};
                if (transposed)
                    tu_ok(cg_conv_transpose3d(x, w, b, S, P, O, G, D, &y0));
                else
                    tu_ok(cg_conv3d(x, w, b, S, P, D, G, &y0));
                tu_ok(cg_randn(cg_tensor_shape(y0), 5, dt, NULL, &gy));
                cg_tensor_release(y0);
            }
            op_step(transposed, x, w, b, gy, st, pad, op, dil, G, &r);
            if (ti == 0) {
                op_run_free(&base);
                base = r;
                continue;
            }
            tu_assert_bitwise(r.y, base.y, "output");
            tu_assert_bitwise(r.gx, base.gx, "grad_input");
            tu_assert_bitwise(r.gw, base.gw, "grad_weight");
            tu_assert_bitwise(r.gb, base.gb, "grad_bias");
            op_run_free(&r);
        }
        /* the op runs the kernels that test_golden and test_random check
         * against the reference: here, its output against the reference
         * kernel directly (the transposed forward bitwise) */
        if (transposed) {
            cg_conv_geom g =
                op_geom(xs, cg_tensor_shape(base.y), k, st, pad, op, dil, G);
            cg_tensor *want;
            tu_ok(cg_empty(cg_tensor_shape(base.y), 5, dt, &want));
            tu_ok(cg__ct3d_ref_forward(&g, dt, cg_tensor_data(x),
                                       cg_tensor_data(w), cg_tensor_data(b),
                                       cg_tensor_data(want)));
            tu_assert_bitwise(base.y, want, "output vs reference");
            cg_tensor_release(want);
        }
        cg__simd_override(prev);
    }
    tu_ok(cg_set_num_threads(saved));
    op_run_free(&base);
    cg_tensor_release(x);
    cg_tensor_release(w);
    cg_tensor_release(b);
    cg_tensor_release(gy);
}
END_TEST

/* The gradient reaching ConvolutionBackward0 from the ops after it comes in
 * many layouts: contiguous planes are read in place (any N and C strides);
 * one plane for every (n, c) that is not contiguous (sum's) is copied by
 * each kernel thread for itself; a gradient expanded along N or C has only
 * its distinct planes written out; anything else is copied. Each layout
 * gives bitwise the kernels' gradients for that gradient made contiguous,
 * at every thread count. */
enum {
    GY_SUM,       /* y.sum(): one value everywhere */
    GY_SUM_N,     /* y.sum(0): expanded along N */
    GY_SUM_C,     /* y.sum(1, keepdim=True): expanded along C */
    GY_SUM_NC,    /* y.sum((0, 1)): one plane for all */
    GY_CAT,       /* torch.cat((y, o), 1): planes of a wider tensor */
    GY_TRANSPOSE, /* y.transpose(2, 4): planes not contiguous */
    GY_SUM_W,     /* y.sum(4, keepdim=True): expanded within planes */
    GY_SUM_NCW,   /* y.sum((0, 1, 4)): one plane for all, expanded along W */
    GY_SUM_NC_T,  /* y.sum((0, 1)).transpose(0, 2): one transposed plane */
    GY_LAYOUTS
};

/* z = the layout's op applied to y, and the gradient u to send into z
 * (NULL: z is a scalar); *gy = the gradient that reaches y, contiguous. */
static void gy_layout(int layout, cg_tensor *y, cg_tensor **z, cg_tensor **u,
                      cg_tensor **gy)
{
    const cg_dtype dt = cg_tensor_dtype(y);
    const int64_t *ys = cg_tensor_shape(y);
    static const int64_t dims[][3] = {[GY_SUM_N] = {0},
                                      [GY_SUM_C] = {1},
                                      [GY_SUM_NC] = {0, 1},
                                      [GY_SUM_W] = {4},
                                      [GY_SUM_NCW] = {0, 1, 4}};
    cg_tensor *v = NULL;
    *u = NULL;
    switch (layout) {
    case GY_SUM:
        tu_ok(cg_sum(y, z));
        tu_ok(cg_ones(ys, 5, dt, gy));
        return;
    case GY_CAT: {
        int64_t os[5] = {ys[0], 3, ys[2], ys[3], ys[4]};
        cg_tensor *o, *parts[2];
        tu_ok(cg_randn(os, 5, dt, NULL, &o));
        parts[0] = y;
        parts[1] = o;
        tu_ok(cg_cat(parts, 2, 1, z));
        cg_tensor_release(o);
        tu_ok(cg_randn(cg_tensor_shape(*z), 5, dt, NULL, u));
        tu_ok(cg_tensor_narrow(*u, 1, 0, ys[1], &v));
        break;
    }
    case GY_TRANSPOSE:
        tu_ok(cg_tensor_transpose(y, 2, 4, z));
        tu_ok(cg_randn(cg_tensor_shape(*z), 5, dt, NULL, u));
        tu_ok(cg_tensor_transpose(*u, 2, 4, &v));
        break;
    case GY_SUM_NC_T: {
        cg_tensor *p, *t;
        tu_ok(cg_sum_dims(y, dims[GY_SUM_NC], 2, false, &p));
        tu_ok(cg_tensor_transpose(p, 0, 2, z));
        cg_tensor_release(p);
        tu_ok(cg_randn(cg_tensor_shape(*z), 3, dt, NULL, u));
        tu_ok(cg_tensor_transpose(*u, 0, 2, &t));
        tu_ok(cg_tensor_expand(t, ys, 5, &v));
        cg_tensor_release(t);
        break;
    }
    default: {
        const int nd = layout == GY_SUM_NC ? 2 : (layout == GY_SUM_NCW ? 3 : 1);
        const bool keep = layout != GY_SUM_N && layout != GY_SUM_NC;
        tu_ok(cg_sum_dims(y, dims[layout], nd, keep, z));
        tu_ok(cg_randn(cg_tensor_shape(*z), cg_tensor_dim(*z), dt, NULL, u));
        tu_ok(cg_tensor_expand(*u, ys, 5, &v));
        break;
    }
    }
    tu_ok(cg_tensor_contiguous(v, gy));
    cg_tensor_release(v);
}

/* The geometries of test_gy_layouts: every path by which the backward
 * passes read gy. */
static const struct gy_geom {
    int64_t st[3], pad[3], op[3], dil[3], G, xs[5], ws[5];
} gy_geoms[] = {
    /* rows split into windows (stride 2, padding) */
    {{2, 1, 2},
     {1, 0, 1},
     {1, 0, 0},
     {1, 2, 1},
     2,
     {2, 4, 5, 6, 7},
     {4, 3, 3, 2, 3}},
    /* W with k = s = 2, p = 0: backward-weights folds the W-taps */
    {{2, 1, 2},
     {1, 0, 0},
     {1, 0, 0},
     {1, 2, 1},
     2,
     {2, 4, 5, 6, 11},
     {4, 3, 3, 2, 2}},
    /* the U-Net up-sampling shape: backward-data's lane-folded kernels */
    {{2, 2, 2},
     {0, 0, 0},
     {0, 0, 0},
     {1, 1, 1},
     1,
     {2, 4, 3, 4, 16},
     {4, 6, 2, 2, 2}},
    /* stride 1, no padding: both passes read gy where it is */
    {{1, 1, 1},
     {0, 0, 0},
     {0, 0, 0},
     {1, 1, 1},
     1,
     {2, 1, 4, 5, 14},
     {1, 3, 3, 3, 3}},
};
#define N_GY_GEOMS ((int)(sizeof gy_geoms / sizeof gy_geoms[0]))

START_TEST(test_gy_layouts)
{
    /* _i: geometry _i / 2, float32 or float64 */
    const cg_dtype dt = _i % 2 ? CG_FLOAT64 : CG_FLOAT32;
    const struct gy_geom *q = &gy_geoms[_i / 2];
    const int64_t *st = q->st, *pad = q->pad, *op = q->op, *dil = q->dil;
    const int64_t G = q->G, *xs = q->xs, *ws = q->ws;
    const int64_t bs[1] = {ws[1] * G};
    cg_manual_seed(11 + (uint64_t)_i);
    cg_tensor *x0, *w0, *b0;
    tu_ok(cg_randn(xs, 5, dt, NULL, &x0));
    tu_ok(cg_randn(ws, 5, dt, NULL, &w0));
    tu_ok(cg_randn(bs, 1, dt, NULL, &b0));
    cg_ints S = {3, {st[0], st[1], st[2]}}, P = {3, {pad[0], pad[1], pad[2]}},
            O = {3, {op[0], op[1], op[2]}}, D = {3, {dil[0], dil[1], dil[2]}};
    const int saved = cg_get_num_threads();
    for (int layout = 0; layout < GY_LAYOUTS; layout++) {
        for (int ti = 0; ti < NTHREADS; ti++) {
            tu_ok(cg_set_num_threads(thread_counts[ti]));
            cg_tensor *x = leaf_copy(x0), *w = leaf_copy(w0),
                      *b = leaf_copy(b0);
            cg_tensor *y, *z, *u, *gy;
            tu_ok(cg_conv_transpose3d(x, w, b, S, P, O, G, D, &y));
            gy_layout(layout, y, &z, &u, &gy);
            tu_ok(cg_tensor_backward(z, u, false));
            /* want: the kernels called directly on the contiguous
             * gradient */
            const int64_t *ys = cg_tensor_shape(y);
            cg_conv_geom g = op_geom(xs, ys, ws + 2, st, pad, op, dil, G);
            cg_tensor *gx, *gw, *gb;
            tu_ok(cg_empty(xs, 5, dt, &gx));
            tu_ok(cg_empty(ws, 5, dt, &gw));
            tu_ok(cg_empty(bs, 1, dt, &gb));
            tu_ok(cg__ct3d_fast_backward(&g, dt, cg_tensor_data(x0),
                                         cg_tensor_data(w0), cg_tensor_data(gy),
                                         cg_tensor_data(gx), cg_tensor_data(gw),
                                         cg_tensor_data(gb)));
            char what[64];
            snprintf(what, sizeof what, "layout %d, %d threads", layout,
                     thread_counts[ti]);
            tu_assert_bitwise(cg_tensor_grad(x), gx, what);
            tu_assert_bitwise(cg_tensor_grad(w), gw, what);
            tu_assert_bitwise(cg_tensor_grad(b), gb, what);
            cg_tensor *list[] = {x, w, b, y, z, u, gy, gx, gw, gb};
            for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
                cg_tensor_release(list[i]);
        }
    }
    tu_ok(cg_set_num_threads(saved));
    cg_tensor_release(x0);
    cg_tensor_release(w0);
    cg_tensor_release(b0);
}
END_TEST

/* ======================================================================
 * errors: another dtype, and allocation failures
 * ====================================================================== */

START_TEST(test_errors)
{
    cg_conv_geom g = {.N = 1,
                      .Cin = 1,
                      .Cout = 1,
                      .G = 1,
                      .in = {1, 1, 1},
                      .out = {1, 1, 1},
                      .k = {1, 1, 1},
                      .s = {1, 1, 1},
                      .p = {0, 0, 0},
                      .op = {0, 0, 0},
                      .d = {1, 1, 1}};
    float x[2] = {1, 0}, w[2] = {1, 0}, y[2] = {7, 7};
    tu_fails(cg__ct3d_fast_forward(&g, CG_COMPLEX64, x, w, NULL, y),
             CG_ERR_RUNTIME,
             "internal error: cg__ct3d_fast_forward has no complex64 kernel "
             "(float32 and float64 only)");
    tu_fails(cg__ct3d_fast_backward(&g, CG_COMPLEX128, x, w, y, y, y, y),
             CG_ERR_RUNTIME,
             "internal error: cg__ct3d_fast_backward has no complex128 "
             "kernel (float32 and float64 only)");
    ck_assert(y[0] == 7 && y[1] == 7);
}
END_TEST

typedef struct alloc_ctx {
    conv_case c;
    results r, before;
} alloc_ctx;

/* Every scratch allocation failing in turn: CG_ERR_NOMEM, and no output
 * written (still as `before`). */
static cg_status alloc_scenario(void *vctx)
{
    alloc_ctx *a = vctx;
    const conv_case *c = &a->c;
    const cg_conv_geom *g = &c->g;
    size_t es = cg_dtype_size(c->dt);
    memcpy(a->r.y, a->before.y, (size_t)n_y(g) * es);
    memcpy(a->r.gx, a->before.gx, (size_t)n_x(g) * es);
    memcpy(a->r.gw, a->before.gw, (size_t)n_w(g) * es);
    memcpy(a->r.gb, a->before.gb, (size_t)g->Cout * es);
    cg_status st = cg__ct3d_fast_forward(g, c->dt, c->x, c->w, c->b, a->r.y);
    if (st != CG_OK) {
        ck_assert_int_eq(st, CG_ERR_NOMEM);
        ck_assert(memcmp(a->r.y, a->before.y, (size_t)n_y(g) * es) == 0);
        return st;
    }
    st = cg__ct3d_fast_backward(g, c->dt, c->x, c->w, c->gy, a->r.gx, a->r.gw,
                                a->r.gb);
    if (st != CG_OK) {
        ck_assert_int_eq(st, CG_ERR_NOMEM);
        ck_assert(memcmp(a->r.gx, a->before.gx, (size_t)n_x(g) * es) == 0);
        ck_assert(memcmp(a->r.gw, a->before.gw, (size_t)n_w(g) * es) == 0);
        ck_assert(memcmp(a->r.gb, a->before.gb, (size_t)g->Cout * es) == 0);
    }
    return st;
}

START_TEST(test_alloc)
{
    alloc_ctx a;
    random_case(7, &a.c); /* padded x, groups */
    a.c.b = a.c.bias ? a.c.b : NULL;
    results_alloc(&a.r, &a.c);
    results_alloc(&a.before, &a.c);
    fill_nan(a.before.y, n_y(&a.c.g), a.c.dt);
    fill_nan(a.before.gx, n_x(&a.c.g), a.c.dt);
    fill_nan(a.before.gw, n_w(&a.c.g), a.c.dt);
    fill_nan(a.before.gb, a.c.g.Cout, a.c.dt);
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, &a, "fast conv"), 3);
    results_free(&a.r);
    results_free(&a.before);
    free(a.c.x);
    free(a.c.w);
    free(a.c.gy);
    free(a.c.bias ? a.c.b : NULL);
}
END_TEST

/* ======================================================================
 * simd: detection and the override
 * ====================================================================== */

START_TEST(test_simd_levels)
{
    cg_simd lv;
    ck_assert(cg__simd_parse("off", &lv) && lv == CG_SIMD_PORTABLE);
    ck_assert(cg__simd_parse("avx2", &lv) && lv == CG_SIMD_AVX2);
    ck_assert(cg__simd_parse("avx512", &lv) && lv == CG_SIMD_AVX512);
    ck_assert(!cg__simd_parse("sse", &lv));
    ck_assert_str_eq(cg__simd_name(CG_SIMD_AVX2), "avx2");
    ck_assert_ptr_null(cg__simd_name(CG_SIMD_COUNT));
    cg_simd prev = cg__simd_override(CG_SIMD_PORTABLE);
    ck_assert_int_eq(cg__simd_level(), CG_SIMD_PORTABLE);
    /* the public name of each level, PyTorch's words */
    ck_assert_str_eq(cg_get_cpu_capability(), "DEFAULT");
    static const char *const caps[] = {"DEFAULT", "AVX2", "AVX512"};
    for (int l = CG_SIMD_PORTABLE; l <= (int)cg__simd_detected(); l++) {
        cg__simd_override((cg_simd)l);
        ck_assert_str_eq(cg_get_cpu_capability(), caps[l]);
    }
    /* never above what the CPU has */
    cg__simd_override(CG_SIMD_AVX512);
    ck_assert_int_eq(cg__simd_level(), cg__simd_detected());
    ck_assert_str_eq(cg_get_cpu_capability(), caps[cg__simd_detected()]);
    cg__simd_override(prev);
}
END_TEST

Suite *conv_fast_suite(void)
{
    Suite *s = suite_create("conv_fast");
    TCase *tc = tcase_create("golden");
    tcase_add_loop_test(tc, test_golden, 0, 42);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("random");
    tcase_add_loop_test(tc, test_random, 0, 10);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("workloads");
    tcase_add_loop_test(tc, test_workload_shapes, 0, 10);
    tcase_add_loop_test(tc, test_lane_shapes, 0, 30);
    tcase_add_loop_test(tc, test_fold_shapes, 0, 26);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("conv3d");
    tcase_add_loop_test(tc, test_conv3d_random, 0, 6);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("ops");
    tcase_add_loop_test(tc, test_op_threads, 0, 4);
    tcase_add_loop_test(tc, test_gy_layouts, 0, 2 * N_GY_GEOMS);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_alloc);
    tcase_add_test(tc, test_simd_levels);
    suite_add_tcase(s, tc);
    return s;
}
