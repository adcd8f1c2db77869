/*
 * conv_transpose3d_fast.c -- fast ConvTranspose3d forward, backward-data
 * and backward-weights+bias for float32 and float64 (complex convolutions
 * are composed of these in convolution.c), on the thread pool, with the
 * micro-kernels of ct3d_template.h (portable C, AVX2, AVX-512). Mirrors
 * what PyTorch 1.13's slow_conv_transpose3d computes; the algorithm is our
 * own (PyTorch runs vol2col + GEMM + col2vol).
 *
 * Letters as in conv_internal.h: x (N, Cin, in...), w (Cin, Cog, k...),
 * y (N, Cout, out...), G groups, Cig = Cin/G, Cog = Cout/G, K3 = kD*kH*kW.
 * Per axis, output o, input i and tap t are related by
 *     o = i*s - p + t*d.
 *
 * Forward, by output phase. Along an axis, output o = j*s + r has phase
 * r = o mod s; tap t reaches phase r iff t*d = r + p (mod s), and then
 * reads input i = j + off(t) with off(t) = (r + p - t*d)/s. Within a phase
 * every tap is a shift, consecutive outputs read consecutive inputs, and
 * no product with an inserted zero is ever formed. x is copied once into
 * a zero-padded buffer (no bounds tests in the inner loop; skipped when no
 * tap can leave x), then for each (n, group, phase-D, phase-H, row j_D)
 *     y[co, o] = sum over taps of the phase (in t order) of
 *                (sum over ci of w[ci, co, t] * xpad[ci, j + off(t)]),
 *                then + b[co]
 * rounded in PyTorch's order (the ordered "osx" micro-kernels, see
 * ct3d_template.h), so the forward gives the reference's bits
 * with vectors along W and a register tile of MR output channels x NR
 * row-vectors. For stride_W = 2 the tile holds both W-phases of the same
 * rows and interleaves them in registers, so y is written contiguously
 * and exactly once; other strides store lane by lane.
 *
 * Backward-data is conv3d(gy, w) cropped: gx[ci, i] = sum over t, co of
 * w[ci, co, t] * gy[co, i*s - p + t*d]. gy is first rearranged once into a
 * phase-split, zero-padded copy gyp[n][co][phase][u] with
 *     gy[o = s*(u + qmin) + r] at phase r, position u,
 * where tap t reads phase r(t) = (t*d - p) mod s at u = i + q(t) - qmin,
 * q(t) = floor((t*d - p)/s): again every tap is a shift along every axis,
 * and the same micro-kernel runs with MR input channels and vectors along
 * the input's W. For the U-Net upsampling shape (along W k = s = 2,
 * p = 0, d = 1; along D and H every tap inside gy) there is no split:
 * the two W-taps are folded into the lanes of gy's own rows (the osl
 * kernels), and the next row's gy is prefetched while one is computed.
 *
 * Backward-weights: gw[ci, co, t] = sum over n, i of x[ci, i] *
 * gyp[co, r(t), i + q(t) - qmin], vectors along the input's W rows, a
 * register tile of MR ci x NR co partial-sum vectors walking the rows in
 * a fixed order (blocked, with the partial tile kept in memory between
 * blocks, which does not change the order), lanes summed at the end.
 * grad_bias: per-(n, channel) sums of gy in a fixed order, combined in n
 * order.
 *
 * Threads: each parallel loop cuts its work into chunks by the problem
 * size only -- (n, group, row plane) for forward and backward-data,
 * (group, ci block, tap) for backward-weights -- and each output element
 * belongs to one chunk, computed in a fixed order: results are bitwise
 * identical for any thread count (for one instruction set).
 */
#include "conv_transpose3d_fast.h"

#include "ct3d_isa.h"
#include "simd_internal.h"
#include "tensor_internal.h"
#include "threadpool_internal.h"

#include <string.h>

/* ======================================================================
 * Small helpers
 * ====================================================================== */

static int64_t floor_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
static int64_t ceil_div(int64_t a, int64_t b) /* b > 0 */
{
    return -floor_div(-a, b);
}
static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}
static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static const ct_isa *isa_for(cg_dtype dt)
{
    bool f32 = dt == CG_FLOAT32;
    switch (cg__simd_level()) {
    case CG_SIMD_AVX512:
        if (cg__ct3d_avx512_f32.nw > 0)
            return f32 ? &cg__ct3d_avx512_f32 : &cg__ct3d_avx512_f64;
        break;
    case CG_SIMD_AVX2:
        if (cg__ct3d_avx2_f32.nw > 0)
            return f32 ? &cg__ct3d_avx2_f32 : &cg__ct3d_avx2_f64;
        break;
    default:
        break;
    }
    return f32 ? &cg__ct3d_portable_f32 : &cg__ct3d_portable_f64;
}

/* The vector width that pads a row of `len` elements least (the widest on
 * a tie: fewer instructions for the same lanes). */
static const ct_width *width_for(const ct_isa *isa, int64_t len)
{
    const ct_width *best = isa->w[0];
    int64_t best_len = ceil_div(len, best->V) * best->V;
    for (int i = 1; i < isa->nw; i++) {
        int64_t l = ceil_div(len, isa->w[i]->V) * isa->w[i]->V;
        if (l < best_len) {
            best = isa->w[i];
            best_len = l;
        }
    }
    return best;
}

static cg_status check_dtype(cg_dtype dt, const char *fn)
{
    if (dt == CG_FLOAT32 || dt == CG_FLOAT64)
        return CG_OK;
    return cg__error(CG_ERR_RUNTIME,
                     "internal error: %s has no %s kernel (float32 and "
                     "float64 only)",
                     fn, cg_dtype_name(dt));
}

/* Outputs at least this large are written with non-temporal stores: they
 * are not read back by the kernel, and would only evict its inputs. */
#define STREAM_BYTES ((size_t)4 << 20)

/* Scratch blocks freed together, each aligned to a cache line (vector
 * loads that straddle two lines cost double). They are cg__buffer_alloc
 * buffers: a large block the previous call freed is reused, where a
 * fresh one would cost a page fault per 4 KiB on every call. */
#define SCRATCH_ALIGN 64
typedef struct scratch {
    void *p[16];
    int n;
} scratch;

static void *scratch_alloc(scratch *s, int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / size / 2 ||
        s->n == (int)(sizeof s->p / sizeof s->p[0]))
        return NULL;
    /* the slack: SCRATCH_ALIGN for the alignment, 64 bytes past the end
     * for the kernels' last vector */
    char *p = cg__buffer_alloc((size_t)count * size + SCRATCH_ALIGN + 64);
    if (!p)
        return NULL;
    s->p[s->n++] = p;
    return p + (SCRATCH_ALIGN - (uintptr_t)p % SCRATCH_ALIGN) % SCRATCH_ALIGN;
}
static void scratch_free(scratch *s)
{
    for (int i = 0; i < s->n; i++)
        cg__buffer_free(s->p[i]);
    s->n = 0;
}
static cg_status nomem(int64_t count, size_t size)
{
    return cg__error_nomem(count > 0 ? (size_t)count * size : 0);
}

static inline void put(void *dst, int64_t i, size_t esz, double v)
{
    if (esz == 4)
        ((float *)dst)[i] = (float)v;
    else
        ((double *)dst)[i] = v;
}
static inline void copy_el(void *dst, int64_t i, const void *src, int64_t j,
                           size_t esz)
{
    if (esz == 4)
        ((float *)dst)[i] = ((const float *)src)[j];
    else
        ((double *)dst)[i] = ((const double *)src)[j];
}

/* The smallest count >= n of esz-byte elements spanning an odd number of
 * 64-byte lines: the stride for Cin (or Cout) rows that a kernel reads in
 * turn. Strides of a multiple of 128 bytes put those rows in few L1 sets
 * (a 16x16x16 float plane: all in one), which thrashes; an odd number of
 * lines spreads them over every set. */
static int64_t skew_lines(int64_t n, size_t esz)
{
    const int64_t lines = ceil_div(n * (int64_t)esz, 64);
    return (lines | 1) * 64 / (int64_t)esz;
}

/* Reads ahead: the next item's source rows (n ranges of len bytes,
 * stride apart) are fetched into L2 a few lines per kernel call of the
 * current item, so that memory works while the kernels compute (else
 * every item starts with a wait for memory). A prefetch is only a hint:
 * it changes no value. */
typedef struct ahead {
    const char *base; /* ranges [base + i*stride, + len) for i < n */
    size_t stride, len;
    int64_t n;
    int64_t i; /* range and line to fetch next */
    uintptr_t line;
    int64_t per_call; /* lines per kernel call */
} ahead;

/* Plans the read-ahead of n ranges over `calls` kernel calls (n = 0:
 * nothing). */
static void ahead_begin(ahead *a, const char *base, size_t stride, size_t len,
                        int64_t n, int64_t calls)
{
    a->base = base;
    a->stride = stride;
    a->len = len;
    a->n = len > 0 ? n : 0;
    a->i = 0;
    a->line = (uintptr_t)base & ~(uintptr_t)63;
    const int64_t lines = a->n * ((int64_t)(len / 64) + 2);
    a->per_call = calls > 0 ? ceil_div(lines, calls) : lines;
}

/* The next kernel call's share: up to per_call lines of one range, from
 * *p (*n = 0: nothing left). */
static void ahead_next(ahead *a, const char **p, int *n)
{
    *n = 0;
    if (a->i >= a->n)
        return;
    const uintptr_t end = (uintptr_t)(a->base + a->i * a->stride + a->len);
    const int64_t left = (int64_t)((end - a->line + 63) / 64);
    *p = (const char *)a->line;
    *n = (int)min64(a->per_call, left);
    a->line += (uintptr_t)*n * 64;
    if (*n == left && ++a->i < a->n)
        a->line = (uintptr_t)(a->base + a->i * a->stride) & ~(uintptr_t)63;
}

/* Valid input range [lo, hi) along an axis for tap t: outputs
 * o = i*s - p + t*d inside [0, out). */
static void valid_range(int64_t in, int64_t out, int64_t s, int64_t p,
                        int64_t d, int64_t t, int64_t *lo, int64_t *hi)
{
    int64_t base = t * d - p; /* o = i*s + base */
    *lo = max64(0, ceil_div(-base, s));
    *hi = min64(in, ceil_div(out - base, s));
    if (*hi < *lo)
        *hi = *lo;
}

/* ======================================================================
 * Forward
 * ====================================================================== */

/* One axis of the forward, by output phase. */
typedef struct fwd_axis {
    int64_t s;
    int64_t *J;     /* [s] outputs of phase r: o = j*s + r, j < J[r] */
    int64_t *first; /* [s + 1] taps of phase r: tap[first[r] .. first[r+1]) */
    int64_t *tap;   /* [k] taps sorted by phase, then t */
    int64_t *off;   /* [k] input offset of each: i = j + off */
    int64_t lo;     /* padded x: lo zeros before index 0 */
    int64_t X;      /* padded length */
    int64_t Jmax;
} fwd_axis;

/* Fills a fwd_axis for one spatial axis; `mem` holds 3s + 1 + 2k int64. */
static void fwd_axis_init(fwd_axis *ax, int64_t in, int64_t out, int64_t k,
                          int64_t s, int64_t p, int64_t d, int64_t *mem)
{
    ax->s = s;
    ax->J = mem;
    ax->first = mem + s;
    ax->tap = mem + 2 * s + 1;
    ax->off = mem + 2 * s + 1 + k;
    int64_t n = 0, omin = 0, omax = 0;
    bool any = false;
    ax->Jmax = 0;
    for (int64_t r = 0; r < s; r++) {
        ax->J[r] = out > r ? ceil_div(out - r, s) : 0;
        ax->Jmax = max64(ax->Jmax, ax->J[r]);
        ax->first[r] = n;
        for (int64_t t = 0; t < k; t++) {
            int64_t e = r + p - t * d;
            if (floor_div(e, s) * s != e)
                continue;
            ax->tap[n] = t;
            ax->off[n] = e / s;
            omin = any ? min64(omin, ax->off[n]) : ax->off[n];
            omax = any ? max64(omax, ax->off[n]) : ax->off[n];
            any = true;
            n++;
        }
    }
    ax->first[s] = n;
    /* reads j + off for j < J[r] (and junk lanes of a P = 2 tile past the
     * shorter W-phase): from omin to Jmax - 1 + omax */
    ax->lo = max64(0, -omin);
    ax->X = ax->lo + max64(in, any ? ax->Jmax + omax : 0);
}

typedef struct fwd_ctx {
    const cg_conv_geom *g;
    size_t esz;
    const ct_width *cw;
    int mri, MR, P, nr;
    int64_t nmb; /* channel blocks of MR per group */
    fwd_axis ax[3];
    /* x as the kernels read it: padded copy or x itself */
    const char *xp;
    int64_t Xhw, Xplane; /* padded plane: H*W size, stride between planes */
    const void *x;       /* for the copy */
    char *xpad;          /* NULL: x is read directly */
    /* packed weights [G][nmb][K3][Cig][MR], bias [G][nmb*MR] */
    const char *wp;
    const char *bp;
    /* taps of each phase triple, in td, th, tw order */
    int64_t *ph_start;    /* [sD*sH*sW] */
    int64_t *toff, *wofs; /* [K3] */
    void *y;
    int64_t items; /* (n, g, jd, rd, rh) */
    int stream;    /* y is big: non-temporal stores */
} fwd_ctx;

/* The padded copy of x, one D-row of one (n, ci) plane per chunk, so that
 * a single-channel input is copied in parallel too, each thread mostly
 * writing the rows its own forward items then read. A row inside the
 * input is one run when H and W have no padding; else it is zeroed in one
 * go and its H-rows copied in (a call per padding run would cost more
 * than the copy on a small plane). The plane's last row also zeroes the
 * skew after it. */
static void fwd_pad_chunk(void *vctx, int64_t b, int64_t e)
{
    const fwd_ctx *c = vctx;
    const cg_conv_geom *g = c->g;
    const size_t esz = c->esz;
    const fwd_axis *A = c->ax;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t XD = A[0].X;
    const bool flat = A[1].X == IH && A[2].X == IW;
    for (int64_t ch = b; ch < e; ch++) {
        const int64_t pl = ch / XD, xd = ch % XD, id = xd - A[0].lo;
        char *dst = c->xpad + (size_t)(pl * c->Xplane + xd * c->Xhw) * esz;
        const bool inside = id >= 0 && id < ID; /* else a row of zeros */
        /* (a padding row has no source row: no pointer is formed) */
        const char *src = inside ? (const char *)c->x +
                                       (size_t)((pl * ID + id) * IH * IW) * esz
                                 : NULL;
        if (inside && flat) {
            memcpy(dst, src, (size_t)c->Xhw * esz);
        } else {
            memset(dst, 0, (size_t)c->Xhw * esz);
            if (inside)
                for (int64_t ih = 0; ih < IH; ih++)
                    memcpy(dst + (size_t)((ih + A[1].lo) * A[2].X + A[2].lo) *
                                     esz,
                           src + (size_t)(ih * IW) * esz, (size_t)IW * esz);
        }
        if (xd == XD - 1)
            memset(dst + (size_t)c->Xhw * esz, 0,
                   (size_t)(c->Xplane - XD * c->Xhw) * esz);
    }
}

/* Runs the tiles of one group of rows: nvec vectors (jh, v), nvw per row.
 * P == 2: both W-phases at once. */
static void fwd_rows(const fwd_ctx *c, ct_os_args *a, int64_t n, int64_t gi,
                     int64_t jd, int64_t rd, int64_t rh, int64_t rw, int64_t JH,
                     int64_t nvw, int nrmax)
{
    const cg_conv_geom *g = c->g;
    const fwd_axis *A = c->ax;
    const int V = c->cw->V, MR = c->MR;
    const size_t esz = c->esz;
    const int64_t OH = g->out[1], OW = g->out[2];
    const int64_t od = jd * A[0].s + rd;
    const int64_t nvec = JH * nvw;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    int64_t roff[CT_NR_CAP], doff[CT_NR_CAP];
    int nvalid[CT_NR_CAP];
    a->roff = roff;
    a->doff = doff;
    a->nvalid = nvalid;
    a->src = c->xp + (size_t)((n * g->Cin + gi * Cig) * c->Xplane) * esz;
    const int64_t rowbase = (jd + A[0].lo) * c->Xhw;
    /* vector q = jh*nvw + v, counted along (no division per vector) */
    int64_t jh = 0, v = 0;
    for (int64_t q0 = 0; q0 < nvec; q0 += nrmax) {
        const int nr = (int)min64(nrmax, nvec - q0);
        for (int r = 0; r < nr; r++) {
            int64_t oh = jh * A[1].s + rh;
            roff[r] = rowbase + (jh + A[1].lo) * A[2].X + A[2].lo + v * V;
            if (c->P == 2) {
                doff[r] = (od * OH + oh) * OW + 2 * v * V;
                nvalid[r] = (int)min64(2 * V, OW - 2 * v * V);
            } else {
                doff[r] = (od * OH + oh) * OW + v * V * A[2].s + rw;
                nvalid[r] = (int)min64(V, A[2].J[rw] - v * V);
            }
            if (++v == nvw) {
                v = 0;
                jh++;
            }
        }
        ct_os_fn fn = c->cw->osx[c->mri][c->P - 1][nr];
        for (int64_t mb = 0; mb < c->nmb; mb++) {
            a->wp = c->wp + (size_t)((gi * c->nmb + mb) * K3 * Cig * MR) * esz;
            a->bias =
                c->bp ? c->bp + (size_t)((gi * c->nmb + mb) * MR) * esz : NULL;
            a->dst =
                (char *)c->y + (size_t)((n * g->Cout + gi * Cog + mb * MR) *
                                        g->out[0] * OH * OW) *
                                   esz;
            a->mvalid = (int)min64(MR, Cog - mb * MR);
            fn(a);
        }
    }
}

/* The taps of phase triple (rd, rh, rw) whose D-input row jd + off is
 * inside x: a contiguous range of that phase's list. */
static void fwd_taps(const fwd_ctx *c, int64_t jd, int64_t rd, int64_t rh,
                     int64_t rw, ct_os_args *a, int slot)
{
    const fwd_axis *A = c->ax;
    const int64_t ph = (rd * A[1].s + rh) * A[2].s + rw;
    const int64_t nh = A[1].first[rh + 1] - A[1].first[rh];
    const int64_t nw = A[2].first[rw + 1] - A[2].first[rw];
    int64_t a0 = 0, a1 = 0, ndt = A[0].first[rd + 1] - A[0].first[rd];
    /* offsets decrease with t: valid ones are contiguous */
    bool seen = false;
    for (int64_t i = 0; i < ndt; i++) {
        int64_t id = jd + A[0].off[A[0].first[rd] + i];
        bool ok = id >= 0 && id < c->g->in[0];
        if (ok && !seen) {
            a0 = i;
            seen = true;
        }
        if (ok)
            a1 = i + 1;
    }
    if (!seen)
        a0 = a1 = 0;
    int64_t s0 = c->ph_start[ph] + a0 * nh * nw;
    a->nt[slot] = (int)((a1 - a0) * nh * nw);
    a->toff[slot] = c->toff + s0;
    a->wofs[slot] = c->wofs + s0;
}

static void fwd_chunk(void *vctx, int64_t b, int64_t e)
{
    const fwd_ctx *c = vctx;
    const cg_conv_geom *g = c->g;
    const fwd_axis *A = c->ax;
    const int V = c->cw->V;
    ct_os_args a;
    memset(&a, 0, sizeof a);
    a.C = g->Cin / g->G;
    a.cstride = c->Xplane;
    a.dmstride = g->out[0] * g->out[1] * g->out[2];
    a.dstride = A[2].s;
    a.stream = c->stream;
    for (int64_t it = b; it < e; it++) {
        /* item = (((n*G + gi)*Jmax_D + jd)*sD + rd)*sH + rh */
        int64_t rest = it;
        int64_t rh = rest % A[1].s;
        rest /= A[1].s;
        int64_t rd = rest % A[0].s;
        rest /= A[0].s;
        int64_t jd = rest % A[0].Jmax;
        rest /= A[0].Jmax;
        int64_t gi = rest % g->G, n = rest / g->G;
        if (jd >= A[0].J[rd] || A[1].J[rh] == 0)
            continue;
        const int64_t JH = A[1].J[rh];
        if (c->P == 2) {
            fwd_taps(c, jd, rd, rh, 0, &a, 0);
            fwd_taps(c, jd, rd, rh, 1, &a, 1);
            /* the kernel's paired path takes a taller tile */
            bool pair =
                a.nt[0] == 1 && a.nt[1] == 1 && a.toff[0][0] == a.toff[1][0];
            fwd_rows(c, &a, n, gi, jd, rd, rh, 0, JH, ceil_div(A[2].J[0], V),
                     pair ? c->cw->osx_pair_nr[c->mri] : c->nr);
        } else {
            for (int64_t rw = 0; rw < A[2].s; rw++) {
                if (A[2].J[rw] == 0)
                    continue;
                fwd_taps(c, jd, rd, rh, rw, &a, 0);
                fwd_rows(c, &a, n, gi, jd, rd, rh, rw, JH,
                         ceil_div(A[2].J[rw], V), c->nr);
            }
        }
    }
    if (c->stream && c->cw->fence)
        c->cw->fence();
}

cg_status cg__ct3d_fast_forward(const cg_conv_geom *g, cg_dtype dt,
                                const void *x, const void *w, const void *b,
                                void *y)
{
    cg_status st = check_dtype(dt, "cg__ct3d_fast_forward");
    if (st != CG_OK)
        return st;
    const size_t esz = cg_dtype_size(dt);
    const int64_t G = g->G, Cig = g->Cin / G, Cog = g->Cout / G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    fwd_ctx c;
    memset(&c, 0, sizeof c);
    c.g = g;
    c.esz = esz;
    scratch sc = {.n = 0};

    /* axes */
    int64_t nax = 0;
    for (int a = 0; a < 3; a++)
        nax += 3 * g->s[a] + 1 + 2 * g->k[a];
    int64_t *axmem = scratch_alloc(&sc, nax, sizeof(int64_t));
    if (!axmem) {
        st = nomem(nax, sizeof(int64_t));
        goto out;
    }
    for (int a = 0, at = 0; a < 3; a++) {
        fwd_axis_init(&c.ax[a], g->in[a], g->out[a], g->k[a], g->s[a], g->p[a],
                      g->d[a], axmem + at);
        at += 3 * g->s[a] + 1 + 2 * g->k[a];
    }
    const fwd_axis *A = c.ax;

    /* kernels: vectors along W; both W-phases at once for stride 2 */
    const ct_isa *isa = isa_for(dt);
    c.cw = width_for(isa, A[2].Jmax);
    const int V = c.cw->V;
    c.P = A[2].s == 2 ? 2 : 1;
    /* fewer output channels than a wide tile: one channel per tile (a
     * wide one would compute zeros for the missing ones) */
    c.mri = Cog < CT_MR_WIDE ? CT_MR1 : CT_MR4;
    c.MR = Cog < CT_MR_WIDE ? 1 : CT_MR_WIDE;
    c.nr = c.cw->osx_nr[c.mri][c.P - 1];
    if (c.P == 1 && c.mri == CT_MR4 && (Cig >= CT_TALL_C || Cig == 1))
        c.nr = c.cw->osx_tall_nr;
    c.nmb = ceil_div(Cog, c.MR);

    /* x: read directly when no tap leaves it and no vector runs past a
     * row, else a zero-padded copy */
    int64_t last_w = 0; /* furthest W index a vector reads, + 1 */
    for (int64_t rw = 0; rw < A[2].s; rw++) {
        for (int64_t i = A[2].first[rw]; i < A[2].first[rw + 1]; i++)
            last_w = max64(last_w, ceil_div(A[2].J[c.P == 2 ? 0 : rw], V) * V +
                                       A[2].off[i]);
    }
    /* x whose planes are a multiple of 128 bytes apart is copied too, the
     * copy's planes skew_lines apart */
    c.Xhw = A[1].X * A[2].X;
    c.Xplane = A[0].X * c.Xhw;
    bool direct = A[0].lo == 0 && A[1].lo == 0 && A[2].lo == 0 &&
                  A[0].X == g->in[0] && A[1].X == g->in[1] &&
                  A[2].X == g->in[2] && last_w <= g->in[2] &&
                  (size_t)c.Xplane * esz % 128 != 0;
    if (!direct)
        c.Xplane = skew_lines(c.Xplane, esz);
    if (direct) {
        c.xp = x;
    } else {
        int64_t nel = g->N * g->Cin * c.Xplane + 2 * V + 2 * A[2].X;
        c.xpad = scratch_alloc(&sc, nel, esz);
        if (!c.xpad) {
            st = nomem(nel, esz);
            goto out;
        }
        int64_t used = g->N * g->Cin * c.Xplane;
        memset(c.xpad + (size_t)used * esz, 0, (size_t)(nel - used) * esz);
        c.xp = c.xpad;
        c.x = x;
    }

    /* packed weights and bias */
    int64_t nwp = G * c.nmb * K3 * Cig * c.MR;
    char *wp = scratch_alloc(&sc, nwp + G * c.nmb * c.MR, esz);
    if (!wp) {
        st = nomem(nwp + G * c.nmb * c.MR, esz);
        goto out;
    }
    for (int64_t gi = 0; gi < G; gi++)
        for (int64_t mb = 0; mb < c.nmb; mb++)
            for (int64_t t = 0; t < K3; t++)
                for (int64_t ci = 0; ci < Cig; ci++)
                    for (int64_t m = 0; m < c.MR; m++) {
                        int64_t co = mb * c.MR + m;
                        int64_t di =
                            (((gi * c.nmb + mb) * K3 + t) * Cig + ci) * c.MR +
                            m;
                        if (co < Cog)
                            copy_el(wp, di, w,
                                    ((gi * Cig + ci) * Cog + co) * K3 + t, esz);
                        else
                            put(wp, di, esz, 0.0);
                    }
    c.wp = wp;
    if (b) {
        char *bp = wp + (size_t)nwp * esz;
        for (int64_t gi = 0; gi < G; gi++)
            for (int64_t m = 0; m < c.nmb * c.MR; m++) {
                if (m < Cog)
                    copy_el(bp, gi * c.nmb * c.MR + m, b, gi * Cog + m, esz);
                else
                    put(bp, gi * c.nmb * c.MR + m, esz, 0.0);
            }
        c.bp = bp;
    }

    /* tap lists per phase triple */
    const int64_t nph = g->s[0] * g->s[1] * g->s[2];
    int64_t *tl = scratch_alloc(&sc, nph + 2 * K3, sizeof(int64_t));
    if (!tl) {
        st = nomem(nph + 2 * K3, sizeof(int64_t));
        goto out;
    }
    c.ph_start = tl;
    c.toff = tl + nph;
    c.wofs = tl + nph + K3;
    {
        int64_t n = 0;
        for (int64_t rd = 0; rd < A[0].s; rd++)
            for (int64_t rh = 0; rh < A[1].s; rh++)
                for (int64_t rw = 0; rw < A[2].s; rw++) {
                    c.ph_start[(rd * A[1].s + rh) * A[2].s + rw] = n;
                    for (int64_t a0 = A[0].first[rd]; a0 < A[0].first[rd + 1];
                         a0++)
                        for (int64_t a1 = A[1].first[rh];
                             a1 < A[1].first[rh + 1]; a1++)
                            for (int64_t a2 = A[2].first[rw];
                                 a2 < A[2].first[rw + 1]; a2++) {
                                int64_t t =
                                    (A[0].tap[a0] * g->k[1] + A[1].tap[a1]) *
                                        g->k[2] +
                                    A[2].tap[a2];
                                c.toff[n] = A[0].off[a0] * c.Xhw +
                                            A[1].off[a1] * A[2].X +
                                            A[2].off[a2];
                                c.wofs[n] = t * Cig * c.MR;
                                n++;
                            }
                }
    }

    c.y = y;
    c.stream =
        (size_t)(g->N * g->Cout * g->out[0] * g->out[1] * g->out[2]) * esz >=
        STREAM_BYTES;
    c.items = g->N * G * A[0].Jmax * A[0].s * A[1].s;
    if (c.xpad)
        cg__parallel_for(g->N * g->Cin * A[0].X, fwd_pad_chunk, &c);
    cg__parallel_for(c.items, fwd_chunk, &c);
out:
    scratch_free(&sc);
    return st;
}

/* ======================================================================
 * The split gy rows (backward-data and backward-weights)
 *
 * Both backward passes read gy at o = i*s - p + t*d. Along H and W every
 * row of gy is rearranged into phase-split, zero-padded form: tap t reads
 * phase r(t) = (t*d - p) mod s at u = i + q(t) - qmin, q(t) =
 * floor((t*d - p)/s), so each tap becomes a shift and vectors along the
 * input's W read contiguously. Along D no rearranging is needed: a tap
 * reads gy row od = id*s - p + td*d, an affine function of the input row.
 * The split is done per window of D-rows, by the thread that then reads
 * it from its own cache: gy is read once from memory, and no gy-sized
 * copy is ever written. With s = 1, p = 0 and no output_padding along H
 * and W the split would copy gy unchanged (hw_split.identity): the passes
 * then read gy where it is.
 * ====================================================================== */

/* One of the H and W axes of the split. */
typedef struct bwd_axis {
    int64_t s, k;
    int64_t *q, *r; /* [k] */
    int64_t qmin, qmax;
    int64_t Gn;    /* positions per phase: in + qmax - qmin */
    int64_t *pidx; /* [s] compact index of phase r, -1 if no tap uses it */
    int64_t np;    /* phases used */
} bwd_axis;

/* `mem` holds 2k + s int64. */
static void bwd_axis_init(bwd_axis *ax, int64_t in, int64_t k, int64_t s,
                          int64_t p, int64_t d, int64_t *mem)
{
    ax->s = s;
    ax->k = k;
    ax->q = mem;
    ax->r = mem + k;
    ax->pidx = mem + 2 * k;
    for (int64_t r = 0; r < s; r++)
        ax->pidx[r] = -1;
    for (int64_t t = 0; t < k; t++) {
        int64_t e = t * d - p;
        ax->q[t] = floor_div(e, s);
        ax->r[t] = e - ax->q[t] * s;
        ax->qmin = t ? min64(ax->qmin, ax->q[t]) : ax->q[t];
        ax->qmax = t ? max64(ax->qmax, ax->q[t]) : ax->q[t];
        ax->pidx[ax->r[t]] = 0;
    }
    ax->np = 0;
    for (int64_t r = 0; r < s; r++)
        if (ax->pidx[r] >= 0)
            ax->pidx[r] = ax->np++;
    ax->Gn = in + ax->qmax - ax->qmin;
}

/* A gy row od, split: [H-phase][uh][W-phase][uw], RP elements; rows uh
 * (all W-phases) are HP elements apart. */
typedef struct hw_split {
    const cg_conv_geom *g;
    size_t esz;
    const ct_width *cw;
    bwd_axis ax[2]; /* H, W */
    int64_t HP, RP;
    ct_wsplit ws;  /* the W part, for the kernels' split_rows */
    int64_t *hdst; /* [OH] where row oh goes in a split row, -1: unused */
    int64_t *zrow; /* [nz] split rows no oh fills: zeros */
    int64_t nz;
    /* along H and W s = 1, p = 0 and no output_padding: a split row is
     * the gy plane itself (RP = OH*OW, no zeros), so the passes read gy
     * where it is instead of splitting it */
    bool identity;
} hw_split;

/* W positions [*u0, *u1) of phase rw that hold gy values. */
static void split_valid(const hw_split *S, int64_t rw, int64_t *u0, int64_t *u1)
{
    const bwd_axis *A = &S->ax[1];
    *u0 = max64(0, ceil_div(-rw, A->s) - A->qmin);
    *u1 = min64(A->Gn, ceil_div(S->g->out[2] - rw, A->s) - A->qmin);
    if (*u1 < *u0)
        *u1 = *u0;
}

/* `mem` holds split_axes_size(g) int64. */
static void hw_split_init(hw_split *S, const cg_conv_geom *g, size_t esz,
                          const ct_width *cw, int64_t *mem)
{
    S->g = g;
    S->esz = esz;
    S->cw = cw;
    bwd_axis_init(&S->ax[0], g->in[1], g->k[1], g->s[1], g->p[1], g->d[1], mem);
    mem += 2 * g->k[1] + g->s[1];
    bwd_axis_init(&S->ax[1], g->in[2], g->k[2], g->s[2], g->p[2], g->d[2], mem);
    mem += 2 * g->k[2] + g->s[2];
    const bwd_axis *W = &S->ax[1];
    S->HP = W->np * W->Gn;
    S->RP = S->ax[0].np * S->ax[0].Gn * S->HP;
    ct_wsplit *ws = &S->ws;
    int64_t *u0 = mem, *u1 = mem + W->s, *doff = mem + 2 * W->s;
    ws->s = W->s;
    ws->qmin = W->qmin;
    ws->Gw = W->Gn;
    for (int64_t rw = 0; rw < W->s; rw++) {
        split_valid(S, rw, &u0[rw], &u1[rw]);
        doff[rw] = W->pidx[rw] < 0 ? -1 : W->pidx[rw] * W->Gn;
    }
    ws->u0 = u0;
    ws->u1 = u1;
    ws->doff = doff;
    ws->pair = W->s == 2 && W->pidx[0] >= 0 && W->pidx[1] >= 0;
    ws->pb0 = ws->pb1 = 0;
    if (ws->pair) {
        ws->pb0 = max64(u0[0], u0[1]);
        ws->pb1 = max64(ws->pb0, min64(u1[0], u1[1]));
    }
    mem += 3 * W->s;
    /* H: row oh = sh*(uh + qmin) + rh goes to row uh of phase rh */
    const bwd_axis *H = &S->ax[0];
    S->hdst = mem;
    S->zrow = mem + g->out[1];
    for (int64_t oh = 0; oh < g->out[1]; oh++) {
        int64_t rh = oh % H->s, uh = (oh - rh) / H->s - H->qmin;
        S->hdst[oh] = H->pidx[rh] >= 0 && uh >= 0 && uh < H->Gn
                          ? (H->pidx[rh] * H->Gn + uh) * S->HP
                          : -1;
    }
    S->nz = 0;
    for (int64_t rh = 0; rh < H->s; rh++) {
        if (H->pidx[rh] < 0)
            continue;
        for (int64_t uh = 0; uh < H->Gn; uh++) {
            int64_t oh = H->s * (uh + H->qmin) + rh;
            if (oh < 0 || oh >= g->out[1])
                S->zrow[S->nz++] = (H->pidx[rh] * H->Gn + uh) * S->HP;
        }
    }
    S->identity = g->s[1] == 1 && g->s[2] == 1 && g->p[1] == 0 &&
                  g->p[2] == 0 && H->Gn == g->out[1] && W->Gn == g->out[2];
}

static int64_t split_axes_size(const cg_conv_geom *g)
{
    return 2 * (g->k[1] + g->k[2]) + g->s[1] + 4 * g->s[2] + g->out[1] +
           g->s[1] * (g->in[1] + g->k[1] * g->d[1] / g->s[1] + 2);
}

/* Offset of tap (th, tw) in a split row, relative to input position
 * (ih, iw) at (ih - qmin_H)*HP + iw - qmin_W. */
static int64_t tap_hw(const hw_split *S, int64_t th, int64_t tw)
{
    const bwd_axis *H = &S->ax[0], *W = &S->ax[1];
    return (H->pidx[H->r[th]] * H->Gn + H->q[th]) * S->HP +
           W->pidx[W->r[tw]] * W->Gn + W->q[tw];
}

/* dst (RP elements) = row od of the gy plane `src` (OD*OH*OW), split.
 * The rows of gy are read in order. */
static void split_row(const hw_split *S, char *dst, const char *src, int64_t od)
{
    const size_t esz = S->esz;
    const int64_t OH = S->g->out[1], OW = S->g->out[2];
    for (int64_t z = 0; z < S->nz; z++)
        memset(dst + (size_t)S->zrow[z] * esz, 0, (size_t)S->HP * esz);
    S->cw->split_rows(dst, S->hdst, src + (size_t)(od * OH * OW) * esz, OW, OH,
                      &S->ws);
}

/* A gradient given as one strided (OD, OH, OW) plane for every (n, c) --
 * y.sum()'s, expanded from one value -- is not written out by the caller:
 * each thread copies it, contiguous, into scratch of its own (its home's)
 * the first time it needs it in a job, and its kernels read that copy.
 * Its stores then go to lines no other core holds, where one shared copy
 * would be written by one thread and fetched from its cache by the others
 * (the E workload's autograd step at 2 threads on a 2-core virtual
 * machine: 2 us faster of 47, 10 of 85 when moving lines between the
 * cores is slow). */
typedef struct gy_private {
    const char *src;     /* the plane's first element */
    int64_t st[3];       /* its D, H, W strides, in elements */
    char *planes;        /* [homes][plane] */
    unsigned char *made; /* [homes]: that home's copy is made */
    int64_t plane;       /* elements per plane */
    const cg_conv_geom *g;
    size_t esz;
} gy_private;

/* dst[i] = src[i * stride] for i < n, stride in elements (0: one value
 * throughout: a few written, then copied onto the rest in doubling runs,
 * memcpy being faster than any loop the portable build has). */
static void gather_row(char *dst, const char *src, int64_t stride, int64_t n,
                       size_t esz)
{
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * esz);
        return;
    }
    const int64_t first = stride == 0 ? min64(n, 16) : n;
    if (esz == sizeof(float)) {
        float *d = (float *)dst;
        const float *x = (const float *)src;
        for (int64_t i = 0; i < first; i++)
            d[i] = x[i * stride];
    } else {
        double *d = (double *)dst;
        const double *x = (const double *)src;
        for (int64_t i = 0; i < first; i++)
            d[i] = x[i * stride];
    }
    for (int64_t done = first; done < n;) {
        const int64_t m = min64(done, n - done);
        memcpy(dst + (size_t)done * esz, dst, (size_t)m * esz);
        done += m;
    }
}

/* Home `home`'s contiguous copy of the plane, made on first use. Only the
 * thread with that home touches its flag and copy during a job; a job
 * ends before the next begins, so a thread of a later job given the same
 * home finds the copy made. */
static const char *gy_private_plane(gy_private *pv, int64_t home)
{
    char *dst = pv->planes + (size_t)(home * pv->plane) * pv->esz;
    if (pv->made[home])
        return dst;
    const cg_conv_geom *g = pv->g;
    const int64_t OH = g->out[1], OW = g->out[2];
    const size_t esz = pv->esz;
    if (pv->st[0] == 0 && pv->st[1] == 0 && pv->st[2] == 0) {
        /* one value (y.sum()'s gradient): one fill */
        gather_row(dst, pv->src, 0, pv->plane, esz);
    } else {
        for (int64_t od = 0; od < g->out[0]; od++)
            for (int64_t oh = 0; oh < OH; oh++)
                gather_row(dst + (size_t)((od * OH + oh) * OW) * esz,
                           pv->src +
                               (size_t)(od * pv->st[0] + oh * pv->st[1]) * esz,
                           pv->st[2], OW, esz);
    }
    pv->made[home] = 1;
    return dst;
}

/* A pass's gy as the thread's copy: home `home`'s plane, serving every
 * (n, c) (no strides between planes). */
static void gy_home(gy_private *pv, int64_t home, const void **gy, int64_t *gsn,
                    int64_t *gsc)
{
    *gy = gy_private_plane(pv, home);
    *gsn = *gsc = 0;
}

/* The chunks of a backward pass are grouped into at most this many slots,
 * each with its own scratch (window, partial sums): a fixed number, so
 * scratch does not grow with the problem, and chunk bounds -- hence
 * results -- depend on the problem size only. */
#define MAX_SLOTS 32
/* A slot's window of split gy rows is kept to about this size: written,
 * then read back from the L2 cache. */
#define WINDOW_BYTES (160 * 1024)

/* ======================================================================
 * Backward-data
 *
 * Items: (n, group, block of B input D-rows). An item splits the gy rows
 * its block reads, od in [id0*s - p, (id1 - 1)*s - p + (k - 1)*d], into
 * its slot's window, then computes gx for the block: tiles of MR input
 * channels x NR vectors along the input's rows, summing over taps and
 * output channels.
 * ====================================================================== */

typedef struct bdata_ctx {
    const cg_conv_geom *g;
    size_t esz;
    hw_split S;
    const ct_width *cw;
    int mri, MR, nr;
    int64_t nmb;
    const char *wp;       /* [G][nmb][K3][Cog][MR] */
    int64_t *toff, *wofs; /* [K3], natural tap order */
    const void *gy;
    int64_t gsn, gsc; /* elements between gy's planes along N and C */
    void *gx;
    int64_t B;     /* input D-rows per item */
    int64_t nrow;  /* window rows: (B - 1)*s + (k - 1)*d + 1 */
    int64_t cwin;  /* window stride between channels: skew_lines(nrow*RP) */
    int64_t items; /* (n, g, D-block) */
    int64_t slots;
    char *win;     /* [slots][Cog][cwin] + slack */
    int64_t wsize; /* elements per slot */
    int stream;
    /* gy is read where it is, not split: S.identity, no D padding (rows
     * id*s - p + td*d from od_lo = id0*s on) and whole vectors along W
     * (a vector never reads past its row) */
    bool direct;
    /* W with k = s = 2, p = 0, d = 1 and no tap of any input D- or H-row
     * outside gy: gy is read unsplit by the osl kernels, one item per
     * (n, group, input D-row); wp is then [G][nmb][kD*kH][Cog][MR][V], the
     * lanes alternating the two W-taps, and toff, wofs have kD*kH taps */
    bool lane;
    gy_private *pv; /* gy as one strided plane (see above), or NULL */
} bdata_ctx;

/* The kernel arguments every backward-data tile shares: Cog channels
 * `cstride` apart in the source, gx's channels one input volume apart,
 * the tile's offsets and lane counts in roff, doff, nvalid. */
static void bdata_args(const bdata_ctx *c, ct_os_args *a, int64_t *roff,
                       int64_t *doff, int *nvalid, int64_t cstride)
{
    const cg_conv_geom *g = c->g;
    memset(a, 0, sizeof *a);
    a->roff = roff;
    a->doff = doff;
    a->nvalid = nvalid;
    a->C = g->Cout / g->G;
    a->cstride = cstride;
    a->dmstride = g->in[0] * g->in[1] * g->in[2];
    a->dstride = 1;
    a->stream = c->stream;
}

static void bdata_item(const bdata_ctx *c, int64_t it, char *win)
{
    const cg_conv_geom *g = c->g;
    const hw_split *S = &c->S;
    const size_t esz = c->esz;
    const int V = c->cw->V, MR = c->MR;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t OD = g->out[0];
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    const int64_t khw = g->k[1] * g->k[2];
    const int64_t nvw = ceil_div(IW, V), nvec = IH * nvw;
    const int64_t nblk = ceil_div(ID, c->B);
    const int64_t blk = it % nblk, gi = (it / nblk) % g->G,
                  n = it / nblk / g->G;
    const int64_t id0 = blk * c->B, id1 = min64(ID, id0 + c->B);
    const int64_t od_lo = id0 * g->s[0] - g->p[0];
    /* the window: its rows that exist in gy */
    const int64_t r0 = max64(0, -od_lo), r1 = min64(c->nrow, OD - od_lo);
    const int64_t cwin = c->direct ? c->gsc : c->cwin;
    /* the window: gy's own planes, or the split rows */
    const char *wbase =
        c->direct
            ? (const char *)c->gy +
                  (size_t)(n * c->gsn + gi * Cog * c->gsc + od_lo * S->RP) * esz
            : win;
    for (int64_t co = 0; co < Cog && !c->direct; co++) {
        const char *plane =
            (const char *)c->gy +
            (size_t)(n * c->gsn + (gi * Cog + co) * c->gsc) * esz;
        for (int64_t r = r0; r < r1; r++)
            split_row(S, win + (size_t)(co * cwin + r * S->RP) * esz, plane,
                      od_lo + r);
    }
    int64_t roff[CT_NR_CAP], doff[CT_NR_CAP];
    int nvalid[CT_NR_CAP];
    ct_os_args a;
    bdata_args(c, &a, roff, doff, nvalid, cwin);
    for (int64_t id = id0; id < id1; id++) {
        /* taps whose gy row id*s - p + td*d exists */
        const int64_t base = id * g->s[0] - g->p[0];
        int64_t t0 = max64(0, ceil_div(-base, g->d[0]));
        int64_t t1 = min64(g->k[0], ceil_div(OD - base, g->d[0]));
        if (t1 < t0)
            t1 = t0;
        a.nt[0] = (int)((t1 - t0) * khw);
        a.toff[0] = c->toff + t0 * khw;
        a.wofs[0] = c->wofs + t0 * khw;
        a.src = wbase + (size_t)((base - od_lo) * S->RP) * esz;
        for (int64_t q0 = 0; q0 < nvec; q0 += c->nr) {
            const int nr = (int)min64(c->nr, nvec - q0);
            for (int r = 0; r < nr; r++) {
                int64_t q = q0 + r, ih = q / nvw, v = q % nvw;
                roff[r] = (ih - S->ax[0].qmin) * S->HP - S->ax[1].qmin + v * V;
                doff[r] = (id * IH + ih) * IW + v * V;
                nvalid[r] = (int)min64(V, IW - v * V);
            }
            ct_os_fn fn = c->cw->os[c->mri][0][nr];
            for (int64_t mb = 0; mb < c->nmb; mb++) {
                a.wp =
                    c->wp + (size_t)((gi * c->nmb + mb) * K3 * Cog * MR) * esz;
                a.dst =
                    (char *)c->gx +
                    (size_t)((n * g->Cin + gi * Cig + mb * MR) * ID * IH * IW) *
                        esz;
                a.mvalid = (int)min64(MR, Cig - mb * MR);
                fn(&a);
            }
        }
    }
}

/* Along axis a, every tap of every input index reaches inside the
 * output: o = i*s - p + t*d in [0, out) for all i < in, t < k. */
static bool all_taps_inside(const cg_conv_geom *g, int a)
{
    return g->p[a] == 0 &&
           (g->in[a] - 1) * g->s[a] + (g->k[a] - 1) * g->d[a] < g->out[a];
}

/* Along W, k = s = 2, p = 0 and d = 1, with an even lane count: input iw
 * reads gy at 2*iw + tw, so one gy row vector holds both W-taps of V/2
 * inputs (the fold of backward-data's osl kernels and of
 * backward-weights). */
static bool w_taps_fold(const cg_conv_geom *g, const ct_width *cw)
{
    return cw->V % 2 == 0 && g->k[2] == 2 && g->s[2] == 2 && g->p[2] == 0 &&
           g->d[2] == 1;
}

static bool lane_fold_ok(const cg_conv_geom *g, const ct_width *cw, int mri)
{
    return w_taps_fold(g, cw) && cw->osl_nr[mri] > 0 && all_taps_inside(g, 0) &&
           all_taps_inside(g, 1);
}

/* The gy rows lane-folded item it = (n, group, input D-row id) reads:
 * D-rows id*s + td*d of its group's channels, from the first. */
static const char *lane_rows(const bdata_ctx *c, int64_t it)
{
    const cg_conv_geom *g = c->g;
    const int64_t ID = g->in[0], Cog = g->Cout / g->G;
    const int64_t n = it / ID / g->G, gi = it / ID % g->G, id = it % ID;
    return (const char *)c->gy +
           (size_t)(n * c->gsn + gi * Cog * c->gsc +
                    id * g->s[0] * g->out[1] * g->out[2]) *
               c->esz;
}

/* c itself, or, when gy is one strided plane, a copy of c that reads the
 * thread's own contiguous copy of it. */
static const bdata_ctx *bdata_home(const bdata_ctx *c, int64_t home,
                                   bdata_ctx *local)
{
    if (!c->pv)
        return c;
    *local = *c;
    gy_home(c->pv, home, &local->gy, &local->gsn, &local->gsc);
    return local;
}

/* Lane-folded items (n, group, input D-row), gy read where it is. */
static void bdata_lane_chunk(void *vctx, int64_t b, int64_t e, int64_t home)
{
    bdata_ctx local;
    const bdata_ctx *c = bdata_home(vctx, home, &local);
    const cg_conv_geom *g = c->g;
    const size_t esz = c->esz;
    const int V = c->cw->V, MR = c->MR;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t OHW = g->out[1] * g->out[2], OW = g->out[2];
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    const int64_t ntap = g->k[0] * g->k[1];
    const int64_t nvw = ceil_div(IW, V), nvec = IH * nvw;
    const int nrmax = c->cw->osl_nr[c->mri];
    int64_t roff[CT_NR_CAP], doff[CT_NR_CAP];
    int nvalid[CT_NR_CAP];
    ct_os_args a;
    bdata_args(c, &a, roff, doff, nvalid, c->gsc);
    a.nt[0] = (int)ntap;
    a.toff[0] = c->toff;
    a.wofs[0] = c->wofs;
    const int64_t span = ((g->k[0] - 1) * g->d[0] + 1) * OHW;
    for (int64_t it = b; it < e; it++) {
        const int64_t id = it % ID, gi = it / ID % g->G, n = it / ID / g->G;
        a.src = lane_rows(c, it);
        ahead ah;
        ahead_begin(&ah, it + 1 < e ? lane_rows(c, it + 1) : a.src,
                    (size_t)c->gsc * esz, (size_t)span * esz,
                    it + 1 < e ? Cog : 0, ceil_div(nvec, nrmax) * c->nmb);
        /* channel blocks outside: the row's gy, read by every block,
         * stays in L2, and the rows of a tile then come in order */
        for (int64_t mb = 0; mb < c->nmb; mb++) {
            a.wp = c->wp +
                   (size_t)((gi * c->nmb + mb) * ntap * Cog * MR * V) * esz;
            a.dst = (char *)c->gx +
                    (size_t)((n * g->Cin + gi * Cig + mb * MR) * ID * IH * IW) *
                        esz;
            a.mvalid = (int)min64(MR, Cig - mb * MR);
            for (int64_t q0 = 0; q0 < nvec; q0 += nrmax) {
                const int nr = (int)min64(nrmax, nvec - q0);
                for (int r = 0; r < nr; r++) {
                    int64_t q = q0 + r, ih = q / nvw, v = q % nvw;
                    roff[r] = ih * g->s[1] * OW + 2 * v * V;
                    doff[r] = (id * IH + ih) * IW + v * V;
                    nvalid[r] = (int)min64(V, IW - v * V);
                }
                ahead_next(&ah, &a.ahead, &a.nahead);
                c->cw->osl[c->mri][nr](&a);
            }
        }
    }
    if (c->stream && c->cw->fence)
        c->cw->fence();
}

/* Packs w (Cin, Cog, taps) for backward-data into c->wp,
 * [G][nmb][nt][Cog][MR][L]: input channels in blocks of MR (zeros past
 * Cig), and lane l of packed tap t holding tap t*fold + l % fold (fold 1:
 * one lane per tap; fold 2 with L = V: the W-taps alternating, for the
 * lane-folded kernels). */
static cg_status bdata_pack(bdata_ctx *c, const void *w, int64_t nt, int L,
                            int fold, scratch *sc)
{
    const cg_conv_geom *g = c->g;
    const size_t esz = c->esz;
    const int64_t G = g->G, Cig = g->Cin / G, Cog = g->Cout / G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    const int64_t nwp = G * c->nmb * nt * Cog * c->MR * L;
    char *wp = scratch_alloc(sc, nwp, esz);
    if (!wp)
        return nomem(nwp, esz);
    int64_t di = 0;
    for (int64_t gi = 0; gi < G; gi++)
        for (int64_t mb = 0; mb < c->nmb; mb++)
            for (int64_t t = 0; t < nt; t++)
                for (int64_t co = 0; co < Cog; co++)
                    for (int64_t m = 0; m < c->MR; m++)
                        for (int64_t l = 0; l < L; l++, di++) {
                            const int64_t ci = mb * c->MR + m;
                            if (ci < Cig)
                                copy_el(wp, di, w,
                                        ((gi * Cig + ci) * Cog + co) * K3 +
                                            t * fold + l % fold,
                                        esz);
                            else
                                put(wp, di, esz, 0.0);
                        }
    c->wp = wp;
    return CG_OK;
}

/* The lane-folded packing of bdata_prepare. */
static cg_status bdata_lane_prepare(bdata_ctx *c, const void *w, scratch *sc)
{
    const cg_conv_geom *g = c->g;
    const int V = c->cw->V;
    const int64_t G = g->G, Cog = g->Cout / G;
    const int64_t ntap = g->k[0] * g->k[1];
    c->lane = true;
    c->items = g->N * G * g->in[0];
    int64_t *tl = scratch_alloc(sc, 2 * ntap, sizeof(int64_t));
    if (!tl)
        return nomem(2 * ntap, sizeof(int64_t));
    cg_status st = bdata_pack(c, w, ntap, V, 2, sc);
    if (st != CG_OK)
        return st;
    c->toff = tl;
    c->wofs = tl + ntap;
    for (int64_t td = 0, t = 0; td < g->k[0]; td++)
        for (int64_t th = 0; th < g->k[1]; th++, t++) {
            c->toff[t] =
                td * g->d[0] * g->out[1] * g->out[2] + th * g->d[1] * g->out[2];
            c->wofs[t] = t * Cog * c->MR * V;
        }
    return CG_OK;
}

static void bdata_chunk(void *vctx, int64_t b, int64_t e, int64_t home)
{
    bdata_ctx local;
    const bdata_ctx *c = bdata_home(vctx, home, &local);
    /* the slots [b, e) run in turn on one thread: the window of its home
     * slot serves them all and stays in that thread's caches */
    char *win = c->win ? c->win + (size_t)(home * c->wsize) * c->esz : NULL;
    for (int64_t sl = b; sl < e; sl++) {
        int64_t i0 = sl * c->items / c->slots,
                i1 = (sl + 1) * c->items / c->slots;
        for (int64_t it = i0; it < i1; it++)
            bdata_item(c, it, win);
    }
    if (c->stream && c->cw->fence)
        c->cw->fence();
}

/* Allocates and packs what backward-data needs (nothing is computed). */
static cg_status bdata_prepare(bdata_ctx *c, const cg_conv_geom *g, cg_dtype dt,
                               const ct_width *cw, int64_t *axmem,
                               const void *w, const void *gy,
                               const int64_t gys[2], void *gx, scratch *sc)
{
    const size_t esz = cg_dtype_size(dt);
    const int64_t G = g->G, Cig = g->Cin / G, Cog = g->Cout / G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    memset(c, 0, sizeof *c);
    c->g = g;
    c->esz = esz;
    c->cw = cw;
    hw_split_init(&c->S, g, esz, cw, axmem);
    c->mri = Cig == 1 ? CT_MR1 : CT_MR4;
    c->MR = Cig == 1 ? 1 : CT_MR_WIDE;
    c->nr = cw->os_nr[c->mri][0];
    c->nmb = ceil_div(Cig, c->MR);
    c->gy = gy;
    c->gsn = gys[0];
    c->gsc = gys[1];
    c->gx = gx;
    c->stream =
        (size_t)(g->N * g->Cin * g->in[0] * g->in[1] * g->in[2]) * esz >=
        STREAM_BYTES;
    if (lane_fold_ok(g, cw, c->mri))
        return bdata_lane_prepare(c, w, sc);
    /* D-rows per item: more of them share the overlap of neighbouring
     * rows' windows, but a window must stay cache-sized and there should
     * be a few items per thread */
    const int64_t ID = g->in[0], s = g->s[0], ext = (g->k[0] - 1) * g->d[0];
    c->B = 1;
    for (;;) {
        int64_t B2 = 2 * c->B;
        int64_t bytes = Cog * ((B2 - 1) * s + ext + 1) * c->S.RP * (int64_t)esz;
        if (B2 > ID || bytes > WINDOW_BYTES || g->N * G * ceil_div(ID, B2) < 16)
            break;
        c->B = B2;
    }
    c->nrow = (c->B - 1) * s + ext + 1;
    c->items = g->N * G * ceil_div(ID, c->B);
    c->slots = min64(c->items, MAX_SLOTS);
    c->direct = c->S.identity && g->p[0] == 0 && g->in[2] % cw->V == 0;
    if (!c->direct) {
        c->cwin = skew_lines(c->nrow * c->S.RP, esz);
        c->wsize = Cog * c->cwin + 2 * cw->V;
        c->win = scratch_alloc(sc, c->slots * c->wsize, esz);
        if (!c->win)
            return nomem(c->slots * c->wsize, esz);
    }

    int64_t *tl = scratch_alloc(sc, 2 * K3, sizeof(int64_t));
    if (!tl)
        return nomem(2 * K3, sizeof(int64_t));
    cg_status st = bdata_pack(c, w, K3, 1, 1, sc);
    if (st != CG_OK)
        return st;
    c->toff = tl;
    c->wofs = tl + K3;
    for (int64_t td = 0, t = 0; td < g->k[0]; td++)
        for (int64_t th = 0; th < g->k[1]; th++)
            for (int64_t tw = 0; tw < g->k[2]; tw++, t++) {
                c->toff[t] = td * g->d[0] * c->S.RP + tap_hw(&c->S, th, tw);
                c->wofs[t] = t * Cog * c->MR;
            }
    return CG_OK;
}

/* ======================================================================
 * Backward-weights
 *
 * Chunks: (group, block of MR output channels, group of D-taps td, part
 * of their tiles). A chunk owns the weight gradients of its tiles -- with
 * one part (as chunks come unless they would share unevenly among the
 * threads), every input channel of its channels and taps -- and walks all
 * positions (n, blocks of B input D-rows) in order: for each block it
 * splits the gy rows its taps read, od in [i0*s - p, (i1 - 1)*s - p +
 * (kD - 1)*d], of its channels into its thread's window (the scratch of
 * the thread's home slot) -- once, however many taps read a row -- then
 * runs each of its (ci block, td, th, tw) tiles over the block, the
 * partial tiles staying in memory between blocks. That leaves every
 * gradient's summation order, hence the result, as in one uninterrupted
 * walk, however the tiles are cut into chunks and the chunks shared out:
 * the cut may depend on the thread count, the bits do not.
 *
 * W with k = s = 2, p = 0, d = 1 and no output_padding (fold): input iw
 * reads gy at 2*iw + tw, so a gy row vector holds both W-taps of V/2
 * inputs. There the kernels read gy where it is, against the block's x
 * rows with every element twice (x2, made per block in the thread's
 * slot), lane parity being the W-tap; a chunk then runs cbn channel blocks
 * over each block, which reuse its x2 from cache.
 * ====================================================================== */

/* Tiles of one chunk whose partial sums are held at once; a chunk with
 * more walks the positions once per group of this many. */
#define BW_TILES 128
/* Bytes of gy window and x rows a position block may span (see
 * bweight_prepare). */
#define BW_BLOCK_BYTES (96 * 1024)
/* fold: the most bytes of x2 one input D-row may take, and of partial
 * tiles a chunk's channel blocks may hold */
#define FOLD_ROW_BYTES (256 * 1024)
#define FOLD_PART_BYTES (512 * 1024)

typedef struct bweight_ctx {
    const cg_conv_geom *g;
    size_t esz;
    hw_split S;
    const ct_width *cw;
    int mri, MR, nr;    /* MR output channels x NR input channels */
    int64_t ncob, ncib; /* channel blocks per group */
    int64_t cbn;        /* fold: output channel blocks per chunk */
    int64_t xcs;        /* fold: x2 stride between channels */
    int64_t tdg;        /* D-taps per chunk */
    int64_t tparts;     /* parts the tiles of those taps are cut into */
    int64_t B;          /* input D-rows per position block */
    int64_t nrow;       /* window rows: (B - 1)*s + (kD - 1)*d + 1 */
    int64_t cwin;       /* window stride between channels */
    int64_t chunks, slots;
    int64_t *d0, *d1; /* [kD] input D-rows tap td reaches gy from */
    char *win;        /* [slots][MR][cwin] + slack; fold: the slot's x2,
                         [Cig][xcs >= B*IH*2*IW] + slack */
    int64_t wsize;
    char *part; /* [slots][cbn][BW_TILES][MR*NR*V] */
    int64_t psize;
    const void *x, *gy;
    int64_t gsn, gsc; /* elements between gy's planes along N and C */
    void *gw;
    bool fold;      /* see above */
    gy_private *pv; /* gy as one strided plane, or NULL */
} bweight_ctx;

/* Output channels [co0, co0 + MR) of channel block cob, and the first of
 * them the block owns (*mfirst): the last block overlaps the previous one
 * when MR does not divide Cog. */
static int64_t bw_block(const bweight_ctx *c, int64_t cob, int *mfirst)
{
    const int64_t Cog = c->g->Cout / c->g->G;
    int64_t co0 = cob * c->MR;
    *mfirst = 0;
    if (co0 + c->MR > Cog) {
        *mfirst = (int)(co0 + c->MR - Cog);
        co0 = Cog - c->MR;
    }
    return co0;
}

/* Zeros the gradients of channel block cob for the D-taps in [td0, td1)
 * that never reach gy. */
static void bw_zero_taps(const bweight_ctx *c, int64_t gi, int64_t cob,
                         int64_t td0, int64_t td1)
{
    const cg_conv_geom *g = c->g;
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2], khw = g->k[1] * g->k[2];
    int mfirst;
    const int64_t co0 = bw_block(c, cob, &mfirst);
    /* gw[gi*Cig + ci][co0 + m][td][th][tw] */
    char *gwb =
        (char *)c->gw + (size_t)(((gi * Cig) * Cog + co0) * K3) * c->esz;
    for (int64_t td = td0; td < td1; td++)
        if (c->d1[td] == c->d0[td])
            for (int64_t ci = 0; ci < Cig; ci++)
                for (int64_t m = mfirst; m < c->MR; m++)
                    for (int64_t t = 0; t < khw; t++)
                        put(gwb, ci * Cog * K3 + m * K3 + td * khw + t, c->esz,
                            0.0);
}

/* Where tile ti of a chunk stands over position block [i0, i1) of sample
 * n: tile = (cib*tdn + td - td0)*kt + t, t = th*kW + tw (kt = kH*kW) or,
 * with fold, t = th (kt = kH). */
typedef struct bw_tile {
    int64_t td, t, th; /* its taps */
    int64_t ci0;       /* its first x channel in the group */
    int nr;            /* and how many */
    int64_t ia, h0;    /* its first input D-row and H-row */
} bw_tile;

/* Decodes tile ti (see bw_tile) and sets a's walk (nd, nh) and whether
 * it starts from and ends in the partial sums. False: none of the block's
 * input rows reaches gy through the tile's D-tap. */
static bool bw_tile_at(const bweight_ctx *c, int64_t ti, int64_t kt,
                       int64_t td0, int64_t tdn, int64_t n, int64_t i0,
                       int64_t i1, bw_tile *t, ct_bw_args *a)
{
    const cg_conv_geom *g = c->g;
    const int64_t Cig = g->Cin / g->G;
    t->t = ti % kt;
    t->td = td0 + ti / kt % tdn;
    t->th = c->fold ? t->t : t->t / g->k[2];
    t->ia = max64(i0, c->d0[t->td]);
    const int64_t ib = min64(i1, c->d1[t->td]);
    if (t->ia >= ib)
        return false;
    /* the ci blocks as even as they go: 32 = 6+6+5+5+5+5, not 6+6+6+6+6+2 */
    const int64_t cib = ti / kt / tdn;
    t->ci0 = cib * Cig / c->ncib;
    t->nr = (int)((cib + 1) * Cig / c->ncib - t->ci0);
    int64_t h1;
    valid_range(g->in[1], g->out[1], g->s[1], g->p[1], g->d[1], t->th, &t->h0,
                &h1);
    a->nd = ib - t->ia;
    a->nh = h1 - t->h0;
    a->part_in = !(n == 0 && t->ia == c->d0[t->td]);
    a->part_out = !(n == g->N - 1 && ib == c->d1[t->td]);
    return true;
}

static void bweight_one(const bweight_ctx *c, int64_t ch, char *win, char *part)
{
    const cg_conv_geom *g = c->g;
    const hw_split *S = &c->S;
    const size_t esz = c->esz;
    const int V = c->cw->V, MR = c->MR, NR = c->nr;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const int64_t OD = g->out[0], s = g->s[0];
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2];
    const int64_t Iplane = ID * IH * IW;
    const int64_t khw = g->k[1] * g->k[2];
    /* chunk = ((gi*ncob + cob)*ntdg + tg)*tparts + tp */
    const int64_t ntdg = ceil_div(g->k[0], c->tdg);
    const int64_t tp = ch % c->tparts, whole = ch / c->tparts;
    const int64_t tg = whole % ntdg, cob = (whole / ntdg) % c->ncob,
                  gi = whole / ntdg / c->ncob;
    const int64_t td0 = tg * c->tdg, td1 = min64(g->k[0], td0 + c->tdg);
    int mfirst;
    const int64_t co0 = bw_block(c, cob, &mfirst);
    /* gw[gi*Cig + ci][co0 + m][td][th][tw] */
    char *gwb = (char *)c->gw + (size_t)(((gi * Cig) * Cog + co0) * K3) * esz;
    if (tp == 0) /* the taps no tile writes: once */
        bw_zero_taps(c, gi, cob, td0, td1);
    const size_t tile = (size_t)MR * (size_t)NR * (size_t)V * esz;
    /* tile = (cib*tdn + td - td0)*khw + th*kW + tw: the taps of one block
     * of x's channels in a row, so those x rows stay in L1 while the taps
     * shift over the window */
    const int64_t tdn = td1 - td0, ntiles = c->ncib * tdn * khw;
    const int64_t t_lo = tp * ntiles / c->tparts,
                  t_hi = (tp + 1) * ntiles / c->tparts;
    const bool direct = S->identity; /* gy read where it is */
    const int64_t cwin = direct ? c->gsc : c->cwin;
    ct_bw_args a;
    memset(&a, 0, sizeof a);
    a.mcs = cwin;
    a.mds = s * S->RP;
    a.mhs = S->HP;
    a.jcs = Iplane;
    a.jds = IH * IW;
    a.jhs = IW;
    a.nn = 1;
    a.W = IW;
    a.om = K3;
    a.oj = Cog * K3;
    a.mfirst = mfirst;
    for (int64_t tg0 = t_lo; tg0 < t_hi; tg0 += BW_TILES) {
        const int64_t tg1 = min64(t_hi, tg0 + BW_TILES);
        for (int64_t n = 0; n < g->N; n++)
            for (int64_t i0 = 0; i0 < ID; i0 += c->B) {
                const int64_t i1 = min64(ID, i0 + c->B);
                /* the window: the gy rows of this block that the chunk's
                 * taps read and that exist, MR channels (a tap reads only
                 * rows inside gy) */
                const int64_t od_lo = i0 * s - g->p[0];
                const int64_t r0 = max64(td0 * g->d[0], -od_lo),
                              r1 = min64((i1 - i0 - 1) * s +
                                             (td1 - 1) * g->d[0] + 1,
                                         OD - od_lo);
                /* row r of the window is gy row od_lo + r: split, or gy's
                 * own (then od_lo + r, not r, is the row's index) */
                const char *wbase =
                    direct
                        ? (const char *)c->gy +
                              (size_t)(n * c->gsn + (gi * Cog + co0) * c->gsc) *
                                  esz
                        : win;
                const int64_t wrow = direct ? od_lo : 0;
                for (int64_t m = 0; m < MR && !direct; m++) {
                    const char *plane =
                        (const char *)c->gy +
                        (size_t)(n * c->gsn + (gi * Cog + co0 + m) * c->gsc) *
                            esz;
                    for (int64_t r = r0; r < r1; r++)
                        split_row(S, win + (size_t)(m * cwin + r * S->RP) * esz,
                                  plane, od_lo + r);
                }
                for (int64_t ti = tg0; ti < tg1; ti++) {
                    bw_tile t;
                    if (!bw_tile_at(c, ti, khw, td0, tdn, n, i0, i1, &t, &a))
                        continue;
                    /* with no H row the kernel reads nothing but still
                     * writes the tile: pointers stay in range */
                    a.pm =
                        a.nh <= 0
                            ? wbase
                            : wbase + (size_t)((wrow + (t.ia - i0) * s +
                                                t.td * g->d[0]) *
                                                   S->RP +
                                               (t.h0 - S->ax[0].qmin) * S->HP -
                                               S->ax[1].qmin +
                                               tap_hw(S, t.th, t.t % g->k[2])) *
                                          esz;
                    a.pj =
                        (const char *)c->x +
                        (size_t)((n * g->Cin + gi * Cig + t.ci0) * Iplane +
                                 t.ia * IH * IW + (a.nh <= 0 ? 0 : t.h0) * IW) *
                            esz;
                    a.part = part + (size_t)(ti - tg0) * tile;
                    a.out = gwb +
                            (size_t)(t.ci0 * Cog * K3 + t.td * khw + t.t) * esz;
                    c->cw->bw[c->mri][t.nr](&a);
                }
            }
    }
}

/* Chunk ch of the fold path (see above); xb is the slot's x2. */
static void bweight_fold_one(const bweight_ctx *c, int64_t ch, char *xb,
                             char *part)
{
    const cg_conv_geom *g = c->g;
    const size_t esz = c->esz;
    const int V = c->cw->V, MR = c->MR, NR = c->nr;
    const int64_t ID = g->in[0], IH = g->in[1], IW = g->in[2], B = c->B;
    const int64_t OHW = g->out[1] * g->out[2], OW = g->out[2], s = g->s[0];
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;
    const int64_t K3 = g->k[0] * g->k[1] * g->k[2], kH = g->k[1];
    /* chunk = (gi*(ncob/cbn) + cg)*ntdg + tg */
    const int64_t ntdg = ceil_div(g->k[0], c->tdg), ncg = c->ncob / c->cbn;
    const int64_t tg = ch % ntdg, cg = ch / ntdg % ncg, gi = ch / ntdg / ncg;
    const int64_t td0 = tg * c->tdg, td1 = min64(g->k[0], td0 + c->tdg);
    const int64_t cob0 = cg * c->cbn, cob1 = cob0 + c->cbn;
    for (int64_t cob = cob0; cob < cob1; cob++)
        bw_zero_taps(c, gi, cob, td0, td1);
    const size_t tile = (size_t)MR * (size_t)NR * (size_t)V * esz;
    /* tile = (cib*tdn + td - td0)*kH + th, both W-taps in its lanes */
    const int64_t tdn = td1 - td0, ntiles = c->ncib * tdn * kH;
    const int64_t ptiles = min64(BW_TILES, ntiles);
    ct_bw_args a;
    memset(&a, 0, sizeof a);
    a.mcs = c->gsc;
    a.mds = s * OHW;
    a.mhs = g->s[1] * OW;
    a.jcs = c->xcs;
    a.jds = IH * 2 * IW;
    a.jhs = 2 * IW;
    a.nn = 1;
    a.W = 2 * IW;
    a.om = K3;
    a.oj = Cog * K3;
    a.fold = 1;
    for (int64_t tg0 = 0; tg0 < ntiles; tg0 += BW_TILES) {
        const int64_t tg1 = min64(ntiles, tg0 + BW_TILES);
        for (int64_t n = 0; n < g->N; n++)
            for (int64_t i0 = 0; i0 < ID; i0 += B) {
                const int64_t i1 = min64(ID, i0 + B);
                /* this block's x2, every channel of the group */
                for (int64_t ci = 0; ci < Cig; ci++)
                    c->cw->dup2(
                        xb + (size_t)(ci * c->xcs) * esz,
                        (const char *)c->x +
                            (size_t)(((n * g->Cin + gi * Cig + ci) * ID + i0) *
                                     IH * IW) *
                                esz,
                        (i1 - i0) * IH * IW);
                for (int64_t cob = cob0; cob < cob1; cob++) {
                    int mfirst;
                    const int64_t co0 = bw_block(c, cob, &mfirst);
                    const char *gyb =
                        (const char *)c->gy +
                        (size_t)(n * c->gsn + (gi * Cog + co0) * c->gsc) * esz;
                    char *pb = part + (size_t)((cob - cob0) * ptiles) * tile;
                    char *gwb = (char *)c->gw +
                                (size_t)((gi * Cig * Cog + co0) * K3) * esz;
                    a.mfirst = mfirst;
                    for (int64_t ti = tg0; ti < tg1; ti++) {
                        bw_tile t;
                        if (!bw_tile_at(c, ti, kH, td0, tdn, n, i0, i1, &t, &a))
                            continue;
                        /* no H row: in-range pointers, as above */
                        a.pm = a.nh <= 0
                                   ? gyb
                                   : gyb + (size_t)((t.ia * s - g->p[0] +
                                                     t.td * g->d[0]) *
                                                        OHW +
                                                    (t.h0 * g->s[1] - g->p[1] +
                                                     t.th * g->d[1]) *
                                                        OW) *
                                               esz;
                        a.pj = a.nh <= 0
                                   ? xb
                                   : xb + (size_t)(t.ci0 * c->xcs +
                                                   ((t.ia - i0) * IH + t.h0) *
                                                       2 * IW) *
                                              esz;
                        a.part = pb + (size_t)(ti - tg0) * tile;
                        a.out =
                            gwb + (size_t)(t.ci0 * Cog * K3 +
                                           (t.td * g->k[1] + t.th) * g->k[2]) *
                                      esz;
                        c->cw->bw[c->mri][t.nr](&a);
                    }
                }
            }
    }
}

static void bweight_chunk(void *vctx, int64_t b, int64_t e, int64_t home)
{
    const bweight_ctx *c = vctx;
    bweight_ctx local;
    if (c->pv) { /* the thread's own copy of the plane (see bdata_home) */
        local = *c;
        gy_home(c->pv, home, &local.gy, &local.gsn, &local.gsc);
        c = &local;
    }
    /* one thread runs the slots [b, e) in turn: they share its home
     * slot's scratch, which stays in that thread's caches */
    char *win = c->win ? c->win + (size_t)(home * c->wsize) * c->esz : NULL;
    char *part = c->part + (size_t)(home * c->psize) * c->esz;
    for (int64_t sl = b; sl < e; sl++) {
        int64_t c0 = sl * c->chunks / c->slots,
                c1 = (sl + 1) * c->chunks / c->slots;
        for (int64_t ch = c0; ch < c1; ch++) {
            if (c->fold)
                bweight_fold_one(c, ch, win, part);
            else
                bweight_one(c, ch, win, part);
        }
    }
}

static cg_status bweight_prepare(bweight_ctx *c, const cg_conv_geom *g,
                                 cg_dtype dt, const ct_width *cw,
                                 int64_t *axmem, const void *x, const void *gy,
                                 const int64_t gys[2], void *gw, scratch *sc)
{
    const size_t esz = cg_dtype_size(dt);
    const int64_t G = g->G, Cig = g->Cin / G, Cog = g->Cout / G;
    const int64_t kD = g->k[0], s = g->s[0], ext = (kD - 1) * g->d[0];
    memset(c, 0, sizeof *c);
    c->g = g;
    c->esz = esz;
    c->cw = cw;
    hw_split_init(&c->S, g, esz, cw, axmem);
    c->mri = Cog < CT_MR_WIDE ? CT_MR1 : CT_MR4;
    c->MR = Cog < CT_MR_WIDE ? 1 : CT_MR_WIDE;
    c->nr = cw->bw_nr[c->mri];
    c->ncob = ceil_div(Cog, c->MR);
    c->ncib = ceil_div(Cig, c->nr);
    c->x = x;
    c->gy = gy;
    c->gsn = gys[0];
    c->gsc = gys[1];
    c->gw = gw;
    /* fold with no output_padding along W, where one input D-row's x2
     * stays in L2 (a slot holds at least that, and each chunk makes its
     * own) */
    c->fold = w_taps_fold(g, cw) && g->out[2] == 2 * g->in[2] &&
              Cig * g->in[1] * 2 * g->in[2] * (int64_t)esz <= FOLD_ROW_BYTES;
    /* All D-taps in one chunk read each gy row once; when that leaves too
     * few chunks to share evenly among the threads, one D-tap per chunk.
     * Either way every gradient sums in the same order: the choice does
     * not change the results. */
    const int64_t T = cg_get_num_threads();
    c->tdg = (G * c->ncob) % T == 0 || G * c->ncob >= 4 * T ? kD : 1;
    /* fold: as many channel blocks per chunk as still leave every thread
     * the same number of chunks, so that a block's x2 is made once per
     * chunk and read from cache by each channel block */
    c->cbn = 1;
    /* the partial tiles one channel block of a chunk holds at once */
    const int64_t block_part =
        min64(BW_TILES, c->tdg * g->k[1] * (c->fold ? 1 : g->k[2]) * c->ncib) *
        c->MR * c->nr * cw->V;
    if (c->fold && c->tdg == kD)
        for (int64_t d = c->ncob; d > 1; d--)
            if (c->ncob % d == 0 && (G * (c->ncob / d)) % T == 0 &&
                d * block_part * (int64_t)esz <= FOLD_PART_BYTES) {
                c->cbn = d;
                break;
            }
    /* D-rows per position block: the block's window and the x rows of one
     * tile, read again by every tap, should stay near L1; a longer block
     * loads and stores the partial tiles less often */
    c->B = 1;
    while (2 * c->B <= g->in[0] &&
           (c->MR * ((2 * c->B - 1) * s + ext + 1) * c->S.RP +
            min64(c->nr, Cig) * 2 * c->B * g->in[1] * g->in[2]) *
                   (int64_t)esz <=
               BW_BLOCK_BYTES)
        c->B *= 2;
    c->nrow = (c->B - 1) * s + ext + 1;
    /* Still too few chunks to share evenly (a layer with few channels):
     * the tiles of a chunk's taps are cut into parts, each a chunk. Each
     * tile still sums in its one order; a part re-splits the gy rows it
     * reads, so only as many parts as make the shares even. The fold
     * path keeps whole chunks. */
    const int64_t whole = G * (c->ncob / c->cbn) * ceil_div(kD, c->tdg);
    c->tparts = 1;
    if (!c->fold && whole % T != 0 && whole < 8 * T)
        for (int64_t p = 2; p <= T && p <= c->ncib * g->k[1] * g->k[2]; p++)
            if (whole * p % T == 0) {
                c->tparts = p;
                break;
            }
    c->chunks = whole * c->tparts;
    c->slots = min64(c->chunks, MAX_SLOTS);
    c->psize = c->cbn * block_part;
    if (c->fold) {
        c->xcs = skew_lines(c->B * g->in[1] * 2 * g->in[2], esz);
        c->wsize = Cig * c->xcs + 2 * cw->V;
        c->win = scratch_alloc(sc, c->slots * c->wsize, esz);
        if (!c->win)
            return nomem(c->slots * c->wsize, esz);
    } else if (!c->S.identity) {
        c->cwin = skew_lines(c->nrow * c->S.RP, esz);
        c->wsize = c->MR * c->cwin + 2 * cw->V;
        c->win = scratch_alloc(sc, c->slots * c->wsize, esz);
        if (!c->win)
            return nomem(c->slots * c->wsize, esz);
    }
    c->part = scratch_alloc(sc, c->slots * c->psize, esz);
    if (!c->part)
        return nomem(c->slots * c->psize, esz);
    c->d0 = scratch_alloc(sc, 2 * kD, sizeof(int64_t));
    if (!c->d0)
        return nomem(2 * kD, sizeof(int64_t));
    c->d1 = c->d0 + kD;
    for (int64_t td = 0; td < kD; td++)
        valid_range(g->in[0], g->out[0], s, g->p[0], g->d[0], td, &c->d0[td],
                    &c->d1[td]);
    return CG_OK;
}

/* ======================================================================
 * grad_bias
 * ====================================================================== */

/* Fewer elements than this are summed on the calling thread. */
#define SMALL_JOB_ELEMS (64 * 1024)

typedef struct bias_ctx {
    const cg_conv_geom *g;
    size_t esz;
    const ct_width *cw;
    const void *gy;
    int64_t gsn, gsc; /* elements between gy's planes along N and C */
    double *part;     /* [N*Cout] */
} bias_ctx;

static void bias_chunk(void *vctx, int64_t b, int64_t e)
{
    const bias_ctx *c = vctx;
    const int64_t P = c->g->out[0] * c->g->out[1] * c->g->out[2];
    for (int64_t pl = b; pl < e; pl++) {
        const int64_t n = pl / c->g->Cout, co = pl % c->g->Cout;
        c->part[pl] = c->cw->sum(
            (const char *)c->gy + (size_t)(n * c->gsn + co * c->gsc) * c->esz,
            P);
    }
}

static void bias_run(const bias_ctx *cc, void *gb)
{
    bias_ctx c = *cc;
    const cg_conv_geom *g = c.g;
    const int64_t P = g->out[0] * g->out[1] * g->out[2];
    /* one plane for every (n, c) (y.sum()'s gradient): one sum, the same
     * for all; a small gy is summed faster than the pool wakes a thread */
    if (c.gsn == 0 && c.gsc == 0) {
        bias_chunk(&c, 0, 1);
        for (int64_t pl = 1; pl < g->N * g->Cout; pl++)
            c.part[pl] = c.part[0];
    } else if (g->N * g->Cout * P < SMALL_JOB_ELEMS) {
        bias_chunk(&c, 0, g->N * g->Cout);
    } else {
        cg__parallel_for(g->N * g->Cout, bias_chunk, &c);
    }
    for (int64_t co = 0; co < g->Cout; co++) {
        double s = 0;
        for (int64_t n = 0; n < g->N; n++)
            s += c.part[n * g->Cout + co];
        put(gb, co, c.esz, s);
    }
}

/* ======================================================================
 * Entry points
 * ====================================================================== */

cg_status cg__ct3d_fast_backward_planes(const cg_conv_geom *g, cg_dtype dt,
                                        const void *x, const void *w,
                                        const void *gy,
                                        const int64_t gy_planes[2],
                                        const int64_t *gy_plane, void *gx,
                                        void *gw, void *gb)
{
    cg_status st = check_dtype(dt, "cg__ct3d_fast_backward");
    if (st != CG_OK)
        return st;
    if (gy_plane && (gy_planes[0] != 0 || gy_planes[1] != 0))
        return cg__error(CG_ERR_RUNTIME,
                         "internal error: a strided gy plane must serve "
                         "every (n, c)");
    scratch sc = {.n = 0};
    const size_t esz = cg_dtype_size(dt);
    const ct_isa *isa = isa_for(dt);
    const ct_width *cw = width_for(isa, g->in[2]);
    bdata_ctx bd;
    bweight_ctx bw;
    bias_ctx bc = {g, esz, NULL, gy, gy_planes[0], gy_planes[1], NULL};
    /* everything is allocated before anything is computed: on failure no
     * output has been touched */
    int64_t nax = 2 * split_axes_size(g);
    int64_t *axmem = scratch_alloc(&sc, nax, sizeof(int64_t));
    if (!axmem) {
        st = nomem(nax, sizeof(int64_t));
        goto out;
    }
    if (gx && (st = bdata_prepare(&bd, g, dt, cw, axmem, w, gy, gy_planes, gx,
                                  &sc)) != CG_OK)
        goto out;
    if (gw && (st = bweight_prepare(&bw, g, dt, cw, axmem + nax / 2, x, gy,
                                    gy_planes, gw, &sc)) != CG_OK)
        goto out;
    if (gb) {
        bc.cw = width_for(isa, g->out[0] * g->out[1] * g->out[2]);
        bc.part = scratch_alloc(&sc, g->N * g->Cout, sizeof(double));
        if (!bc.part) {
            st = nomem(g->N * g->Cout, sizeof(double));
            goto out;
        }
    }
    /* the chunks of each job: backward-data's items (lane-folded) or
     * slots, backward-weights' slots; a home is one of them */
    const int64_t nd = gx ? (bd.lane ? bd.items : bd.slots) : 0;
    const int64_t nw = gw ? bw.slots : 0;
    gy_private pv = {.src = gy, .g = g, .esz = esz};
    if (gy_plane) {
        const int64_t homes = max64(1, max64(nd, nw));
        memcpy(pv.st, gy_plane, sizeof pv.st);
        pv.plane = g->out[0] * g->out[1] * g->out[2];
        pv.planes = scratch_alloc(&sc, homes * pv.plane, esz);
        pv.made = scratch_alloc(&sc, homes, 1);
        if (!pv.planes || !pv.made) {
            st = nomem(homes * pv.plane, esz);
            goto out;
        }
        memset(pv.made, 0, (size_t)homes);
        bd.pv = gx ? &pv : NULL;
        bw.pv = gw ? &pv : NULL;
    }
    if (gx && bd.lane)
        cg__parallel_for_home(nd, bdata_lane_chunk, &bd);
    else if (gx)
        cg__parallel_for_home(nd, bdata_chunk, &bd);
    if (gw)
        cg__parallel_for_home(nw, bweight_chunk, &bw);
    if (gb && gy_plane) {
        /* the calling thread's copy: home 0 of every job is its own */
        gy_home(&pv, 0, &bc.gy, &bc.gsn, &bc.gsc);
    }
    if (gb)
        bias_run(&bc, gb);
out:
    scratch_free(&sc);
    return st;
}

cg_status cg__ct3d_fast_backward(const cg_conv_geom *g, cg_dtype dt,
                                 const void *x, const void *w, const void *gy,
                                 void *gx, void *gw, void *gb)
{
    const int64_t P = g->out[0] * g->out[1] * g->out[2];
    const int64_t planes[2] = {g->Cout * P, P};
    return cg__ct3d_fast_backward_planes(g, dt, x, w, gy, planes, NULL, gx, gw,
                                         gb);
}

cg_status cg__ct3d_fast_backward_input(const cg_conv_geom *g, cg_dtype dt,
                                       const void *gy, const void *w, void *gx)
{
    return cg__ct3d_fast_backward(g, dt, NULL, w, gy, gx, NULL, NULL);
}

cg_status cg__ct3d_fast_backward_weight(const cg_conv_geom *g, cg_dtype dt,
                                        const void *x, const void *gy, void *gw)
{
    return cg__ct3d_fast_backward(g, dt, x, NULL, gy, NULL, gw, NULL);
}

cg_status cg__ct3d_fast_backward_bias(const cg_conv_geom *g, cg_dtype dt,
                                      const void *gy, void *gb)
{
    return cg__ct3d_fast_backward(g, dt, NULL, NULL, gy, NULL, NULL, gb);
}
