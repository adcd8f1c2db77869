/*
 * fuzz_conv.c -- libFuzzer target for nn.Conv3d and nn.ConvTranspose3d:
 * constructor argument sets, input shapes, forward and backward.
 *
 * The input decides the layer (Conv3d or ConvTranspose3d), its options
 * (channels, kernel_size, stride, padding, output_padding, groups,
 * dilation as ints or sequences of any length, bias, dtype,
 * padding_mode), the input (rank 3..6, batch 0..2, channels, small
 * spatial sizes, dtype), an output_size for ConvTranspose3d, whether the
 * input requires grad, and the thread count (1 or 2). Errors are fine.
 * When a real-dtype forward succeeds with three-entry (or one-entry)
 * arguments, the output shape is checked against PyTorch's formula and the
 * output and every gradient against a direct float64 summation, within the
 * rounding bound of the summation (gamma_n of the summed magnitudes).
 */
#define _GNU_SOURCE
#include "cgrad_nn.h"
#include "fuzz_util.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    return 0;
}

static int64_t pick64(fuzz_reader *r, const int64_t *table, unsigned n)
{
    return table[fz_pick(r, n)];
}
#define PICK(r, table) pick64((r), (table), sizeof(table) / sizeof *(table))

/* a size argument: mostly three entries, sometimes one, sometimes a wrong
 * number of them */
static cg_ints read_ints(fuzz_reader *r, const int64_t *table, unsigned n)
{
    static const int counts[] = {3, 3, 3, 3, 1, 1, 0, 2, 4};
    cg_ints v = {counts[fz_pick(r, 9)], {0}};
    for (int i = 0; i < v.n; i++)
        v.v[i] = pick64(r, table, n);
    return v;
}
#define READ_INTS(r, table)                                                    \
    read_ints((r), (table), sizeof(table) / sizeof *(table))

/* the per-axis value of a size argument, or -1 when it has no 3 axes */
static int axis_ok(const cg_ints *v)
{
    return v->n == 3 || v->n == 1;
}
static int64_t axis(const cg_ints *v, int i)
{
    return v->n == 1 ? v->v[0] : v->v[i];
}

/* ---- the reference: direct summation in float64 ---------------------------
 */

typedef struct ref {
    int64_t n, cin, cout, groups;
    int64_t in[3], out[3], k[3], s[3], p[3], d[3];
    bool transposed, has_bias;
    const double *x, *w, *b, *g; /* inputs and grad_output */
    double *y, *ya, *gx, *gxa, *gw, *gwa, *gb, *gba; /* values, |terms| */
    int64_t *yc, *gxc, *gwc, *gbc;                   /* term counts */
} ref;

static void ref_term(ref *R, int64_t xi, int64_t wi, int64_t yi)
{
    double t = R->x[xi] * R->w[wi];
    R->y[yi] += t;
    R->ya[yi] += fabs(t);
    R->yc[yi]++;
    double gy = R->g[yi];
    R->gx[xi] += gy * R->w[wi];
    R->gxa[xi] += fabs(gy * R->w[wi]);
    R->gxc[xi]++;
    R->gw[wi] += gy * R->x[xi];
    R->gwa[wi] += fabs(gy * R->x[xi]);
    R->gwc[wi]++;
}

static void ref_run(ref *R)
{
    int64_t cin_g = R->cin / R->groups, cout_g = R->cout / R->groups;
    int64_t kvol = R->k[0] * R->k[1] * R->k[2];
    int64_t ivol = R->in[0] * R->in[1] * R->in[2];
    int64_t ovol = R->out[0] * R->out[1] * R->out[2];
    for (int64_t n = 0; n < R->n; n++)
        for (int64_t g = 0; g < R->groups; g++)
            for (int64_t a = 0; a < cin_g; a++)
                for (int64_t c = 0; c < cout_g; c++) {
                    int64_t ic = g * cin_g + a, oc = g * cout_g + c;
                    /* weight (Cout, Cin/g, k) or transposed (Cin, Cout/g, k) */
                    int64_t wbase = R->transposed ? (ic * cout_g + c) * kvol
                                                  : (oc * cin_g + a) * kvol;
                    int64_t xbase = (n * R->cin + ic) * ivol;
                    int64_t ybase = (n * R->cout + oc) * ovol;
                    /* pairs (input position, output position) per tap */
                    const int64_t *lo = R->transposed ? R->in : R->out;
                    for (int64_t i0 = 0; i0 < lo[0]; i0++)
                        for (int64_t i1 = 0; i1 < lo[1]; i1++)
                            for (int64_t i2 = 0; i2 < lo[2]; i2++)
                                for (int64_t k0 = 0; k0 < R->k[0]; k0++)
                                    for (int64_t k1 = 0; k1 < R->k[1]; k1++)
                                        for (int64_t k2 = 0; k2 < R->k[2];
                                             k2++) {
                                            int64_t j0 = i0 * R->s[0] -
                                                         R->p[0] + k0 * R->d[0];
                                            int64_t j1 = i1 * R->s[1] -
                                                         R->p[1] + k1 * R->d[1];
                                            int64_t j2 = i2 * R->s[2] -
                                                         R->p[2] + k2 * R->d[2];
                                            const int64_t *hi =
                                                R->transposed ? R->out : R->in;
                                            if (j0 < 0 || j0 >= hi[0] ||
                                                j1 < 0 || j1 >= hi[1] ||
                                                j2 < 0 || j2 >= hi[2])
                                                continue;
                                            int64_t ipos =
                                                (i0 * lo[1] + i1) * lo[2] + i2;
                                            int64_t jpos =
                                                (j0 * hi[1] + j1) * hi[2] + j2;
                                            int64_t wi =
                                                wbase +
                                                (k0 * R->k[1] + k1) * R->k[2] +
                                                k2;
                                            if (R->transposed)
                                                ref_term(R, xbase + ipos, wi,
                                                         ybase + jpos);
                                            else
                                                ref_term(R, xbase + jpos, wi,
                                                         ybase + ipos);
                                        }
                }
    if (R->has_bias)
        for (int64_t n = 0; n < R->n; n++)
            for (int64_t oc = 0; oc < R->cout; oc++)
                for (int64_t o = 0; o < ovol; o++) {
                    int64_t yi = (n * R->cout + oc) * ovol + o;
                    R->y[yi] += R->b[oc];
                    R->ya[yi] += fabs(R->b[oc]);
                    R->yc[yi]++;
                    R->gb[oc] += R->g[yi];
                    R->gba[oc] += fabs(R->g[yi]);
                    R->gbc[oc]++;
                }
}

/* got (count values of t, or of a NULL grad meaning zeros) against want,
 * within gamma_{terms+2} * |terms| (u the unit roundoff of the dtype) */
static void compare(const cg_tensor *t, const double *want, const double *mag,
                    const int64_t *cnt, int64_t count, double u,
                    const char *what)
{
    double *got = calloc((size_t)(count > 0 ? count : 1), sizeof *got);
    if (!got)
        return;
    if (t) {
        FUZZ_CHECK(cg_tensor_numel(t) == count);
        if (cg_tensor_to_doubles(t, got, count) != CG_OK) {
            free(got);
            return;
        }
    }
    for (int64_t i = 0; i < count; i++) {
        /* both sums carry up to gamma_n of the magnitudes */
        double tol = 2.0 * (double)(cnt[i] + 2) * u * mag[i] + 1e-300;
        if (!(fabs(got[i] - want[i]) <= tol)) {
            fprintf(stderr, "%s[%lld]: got %.17g want %.17g (tol %.3g)\n", what,
                    (long long)i, got[i], want[i], tol);
            FUZZ_CHECK(!"conv value mismatch");
        }
    }
    free(got);
}

static double *doubles_of(const cg_tensor *t)
{
    int64_t n = cg_tensor_numel(t);
    double *v = calloc((size_t)(n > 0 ? n : 1), sizeof *v);
    if (v && cg_tensor_to_doubles(t, v, n) != CG_OK) {
        free(v);
        return NULL;
    }
    return v;
}

/* ---- the target ---------------------------------------------------------- */

static const int64_t CHANNELS[] = {1, 1, 2, 2, 3, 4, 6, 0, -1};
static const int64_t GROUPS[] = {1, 1, 1, 2, 3, 0, -2};
static const int64_t KERNEL[] = {1, 2, 3, 1, 2, 0, -1};
static const int64_t STRIDE[] = {1, 1, 2, 3, 0, -1};
static const int64_t PADDING[] = {0, 0, 1, 2, -1};
static const int64_t OUTPAD[] = {0, 0, 1, 2, -1};
static const int64_t DILATION[] = {1, 1, 2, 3, 0, -1};
static const int64_t SPATIAL[] = {1, 2, 3, 4, 5, 0};
static const int64_t BATCH[] = {1, 2, 0};
static const cg_dtype DTYPES[] = {CG_FLOAT32, CG_FLOAT64,   CG_FLOAT32,
                                  CG_FLOAT64, CG_COMPLEX64, CG_COMPLEX128};
static const char *const CONV_MODES[] = {
    "zeros", "zeros", "zeros", "reflect", "replicate", "circular", "bogus"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader rd = {data, size}, *r = &rd;
    bool transposed = fz_pick(r, 2);
    cg_dtype dt = DTYPES[fz_pick(r, 6)];
    int64_t cin = PICK(r, CHANNELS), cout = PICK(r, CHANNELS);
    int64_t groups = PICK(r, GROUPS);
    cg_ints k = READ_INTS(r, KERNEL), s = READ_INTS(r, STRIDE),
            p = READ_INTS(r, PADDING), op = READ_INTS(r, OUTPAD),
            d = READ_INTS(r, DILATION);
    bool bias = fz_pick(r, 4) != 0;
    const char *mode = CONV_MODES[fz_pick(r, 7)];
    uint8_t seed = fz_u8(r);
    int threads = fz_pick(r, 4) == 0 ? 2 : 1;

    cg_module *m = NULL;
    cg_manual_seed(seed);
    cg_status st;
    if (transposed) {
        cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(cin, cout, k);
        o.stride = s;
        o.padding = p;
        o.output_padding = op;
        o.groups = groups;
        o.bias = bias;
        o.dilation = d;
        o.dtype = dt;
        if (fz_pick(r, 8) == 0)
            o.padding_mode = mode;
        st = cg_conv_transpose3d_new(&o, &m);
    } else {
        cg_conv3d_opts o = cg_conv3d_options(cin, cout, k);
        o.stride = s;
        o.padding = p;
        o.dilation = d;
        o.groups = groups;
        o.bias = bias;
        o.padding_mode = mode;
        o.dtype = dt;
        st = cg_conv3d_new(&o, &m);
    }
    if (st != CG_OK) {
        cg_clear_error();
        return 0;
    }

    /* the input */
    static const int RANKS[] = {5, 5, 5, 4, 4, 3, 6};
    int rank = RANKS[fz_pick(r, 7)];
    int64_t shape[6];
    int at = 0;
    if (rank >= 5)
        shape[at++] = PICK(r, BATCH);
    shape[at++] = fz_pick(r, 4) ? cin : PICK(r, CHANNELS);
    while (at < rank)
        shape[at++] = PICK(r, SPATIAL);
    cg_dtype xdt = fz_pick(r, 6) ? dt : DTYPES[fz_pick(r, 6)];
    bool x_grad = fz_pick(r, 3) != 0;
    cg_ints osize = {0, {0}};
    bool use_osize = transposed && fz_pick(r, 4) == 0;
    if (use_osize) {
        static const int ocounts[] = {3, 3, 5, 2};
        osize.n = ocounts[fz_pick(r, 4)];
        for (int i = 0; i < osize.n; i++)
            osize.v[i] = (int64_t)fz_pick(r, 12) - 1;
    }
    int bwd_kind = (int)fz_pick(r, 3); /* 0: none, 1: grad g, 2: sum */

    cg_tensor *x = NULL, *y = NULL, *g = NULL, *loss = NULL;
    double *xv = NULL, *wv = NULL, *bv = NULL, *gv = NULL;
    ref R = {0};
    if (cg_set_num_threads(threads) != CG_OK)
        goto done;
    if (cg_randn(shape, rank, xdt, NULL, &x) != CG_OK)
        goto done;
    if (x_grad)
        cg_tensor_requires_grad_(x, true);
    st = transposed
             ? cg_conv_transpose3d_forward(m, x, use_osize ? &osize : NULL, &y)
             : cg_module_forward(m, x, &y);
    if (st != CG_OK)
        goto done;

    cg_tensor *w =
        transposed ? cg_conv_transpose3d_weight(m) : cg_conv3d_weight(m);
    cg_tensor *b = transposed ? cg_conv_transpose3d_bias(m) : cg_conv3d_bias(m);
    FUZZ_CHECK(w && (b != NULL) == bias);
    int ydim = cg_tensor_dim(y);
    if (getenv("FUZZ_VERBOSE")) {
        fprintf(stderr, "%s cin %lld cout %lld groups %lld input",
                transposed ? "ConvTranspose3d" : "Conv3d", (long long)cin,
                (long long)cout, (long long)groups);
        for (int i = 0; i < rank; i++)
            fprintf(stderr, " %lld", (long long)shape[i]);
        fprintf(stderr, " -> output");
        for (int i = 0; i < ydim; i++)
            fprintf(stderr, " %lld", (long long)cg_tensor_shape(y)[i]);
        fprintf(stderr, "\n");
    }
    FUZZ_CHECK(ydim == rank);
    const int64_t *ys = cg_tensor_shape(y);
    bool batched = rank == 5;
    /* zero input channels give zero output channels, as in PyTorch 1.13
     * (nn.Conv3d(0, 4, 1)(torch.ones(1, 0, 1, 1, 1)) has shape
     * [1, 0, 1, 1, 1]) */
    bool no_channels = shape[batched ? 1 : 0] == 0;
    FUZZ_CHECK(ys[batched ? 1 : 0] == (no_channels ? 0 : cout));
    if (batched)
        FUZZ_CHECK(ys[0] == shape[0]);

    /* the expected output shape, when every argument has 1 or 3 entries */
    bool checkable = axis_ok(&k) && axis_ok(&s) && axis_ok(&p) && axis_ok(&d) &&
                     (!transposed || axis_ok(&op)) &&
                     (dt == CG_FLOAT32 || dt == CG_FLOAT64) && xdt == dt &&
                     (rank == 4 || rank == 5) && !no_channels;
    if (checkable) {
        R.transposed = transposed;
        R.n = batched ? shape[0] : 1;
        R.cin = cin;
        R.cout = cout;
        R.groups = groups;
        R.has_bias = bias;
        for (int i = 0; i < 3; i++) {
            int off = batched ? 2 : 1;
            R.in[i] = shape[off + i];
            R.k[i] = axis(&k, i);
            R.s[i] = axis(&s, i);
            R.p[i] = axis(&p, i);
            R.d[i] = axis(&d, i);
            int64_t want;
            if (transposed) {
                want = (R.in[i] - 1) * R.s[i] - 2 * R.p[i] +
                       R.d[i] * (R.k[i] - 1) + axis(&op, i) + 1;
                if (use_osize)
                    want = osize.v[osize.n - 3 + i];
            } else {
                want = (R.in[i] + 2 * R.p[i] - R.d[i] * (R.k[i] - 1) - 1) /
                           R.s[i] +
                       1;
            }
            if (ys[off + i] != want) {
                fprintf(stderr, "axis %d: output size %lld, formula %lld\n", i,
                        (long long)ys[off + i], (long long)want);
                FUZZ_CHECK(ys[off + i] == want);
            }
            R.out[i] = want;
        }
    }

    /* backward */
    if (bwd_kind == 1) {
        if (cg_randn(ys, ydim, cg_tensor_dtype(y), NULL, &g) != CG_OK)
            goto done;
        st = cg_tensor_backward(y, g, false);
    } else if (bwd_kind == 2) {
        if (cg_sum(y, &loss) != CG_OK)
            goto done;
        st = cg_tensor_backward(loss, NULL, false);
    }
    if (bwd_kind != 0 && st != CG_OK)
        goto done;

    if (!checkable)
        goto done;
    int64_t kvol = R.k[0] * R.k[1] * R.k[2];
    int64_t work = R.n * R.cout * (R.cin / R.groups) * kvol *
                   (transposed ? R.in[0] * R.in[1] * R.in[2]
                               : R.out[0] * R.out[1] * R.out[2]);
    if (work > 2000000)
        goto done;
    int64_t xn = cg_tensor_numel(x), wn = cg_tensor_numel(w),
            yn = cg_tensor_numel(y);
    xv = doubles_of(x);
    wv = doubles_of(w);
    bv = b ? doubles_of(b) : calloc(1, sizeof(double));
    gv = calloc((size_t)(yn > 0 ? yn : 1), sizeof *gv);
    if (!xv || !wv || !bv || !gv)
        goto done;
    if (bwd_kind == 1 && cg_tensor_to_doubles(g, gv, yn) != CG_OK)
        goto done;
    if (bwd_kind == 2)
        for (int64_t i = 0; i < yn; i++)
            gv[i] = 1.0;
    R.x = xv;
    R.w = wv;
    R.b = bv;
    R.g = gv;
#define ALLOC(ptr, count)                                                      \
    ((ptr) = calloc((size_t)((count) > 0 ? (count) : 1), sizeof *(ptr)))
    if (!ALLOC(R.y, yn) || !ALLOC(R.ya, yn) || !ALLOC(R.yc, yn) ||
        !ALLOC(R.gx, xn) || !ALLOC(R.gxa, xn) || !ALLOC(R.gxc, xn) ||
        !ALLOC(R.gw, wn) || !ALLOC(R.gwa, wn) || !ALLOC(R.gwc, wn) ||
        !ALLOC(R.gb, cout) || !ALLOC(R.gba, cout) || !ALLOC(R.gbc, cout))
        goto done;
    ref_run(&R);
    double u = dt == CG_FLOAT32 ? 0x1p-24 : 0x1p-53;
    compare(y, R.y, R.ya, R.yc, yn, u, "output");
    if (bwd_kind != 0) {
        if (x_grad)
            compare(cg_tensor_grad(x), R.gx, R.gxa, R.gxc, xn, u, "grad_input");
        compare(cg_tensor_grad(w), R.gw, R.gwa, R.gwc, wn, u, "grad_weight");
        if (b)
            compare(cg_tensor_grad(b), R.gb, R.gba, R.gbc, cout, u,
                    "grad_bias");
    }

done:
    free(R.y), free(R.ya), free(R.yc), free(R.gx), free(R.gxa), free(R.gxc);
    free(R.gw), free(R.gwa), free(R.gwc), free(R.gb), free(R.gba), free(R.gbc);
    free(xv), free(wv), free(bv), free(gv);
    cg_tensor_release(loss);
    cg_tensor_release(g);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
    cg_clear_error();
    return 0;
}
