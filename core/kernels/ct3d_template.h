/*
 * ct3d_template.h -- the ConvTranspose3d micro-kernels (see ct3d_isa.h for
 * what they compute), written once and instantiated per instruction set,
 * dtype and vector width by including this file after defining:
 *
 *   CT_T            element type (float, double)
 *   CT_VEC          vector type, CT_V lanes
 *   CT_NAME(x)      x pasted with a unique suffix (e.g. x##_avx512_f32_16)
 *   CT_TARGET       function attributes selecting the instruction set
 *   V_ZERO()        all lanes 0
 *   V_SET1(s)       all lanes s
 *   V_LOAD(p)       CT_V elements from p (unaligned)
 *   V_LOADN(p, n)   the first n (1 <= n <= CT_V) elements, others 0; reads
 *                   nothing past p + n
 *   V_STORE(p, v)   CT_V elements to p
 *   V_STOREN(p, v, n) the first n lanes (1 <= n <= CT_V) to p
 *   V_FMA(a, b, c)  a*b + c (fused where the instruction set has it)
 *   V_MUL(a, b), V_ADD(a, b)  a*b and a + b, each rounded
 *   V_ZIP(a, b, lo, hi) lo = a0 b0 a1 b1 ..., hi = the upper half's pairs
 *   V_UNZIP(a, b, ev, od) ev = the even elements of a then of b, od = odd
 *   V_HSUM(v)       sum of the lanes in a fixed order, as CT_T
 *   V_STREAM(p, v)  (optional) non-temporal store to aligned p, and
 *   V_FENCE()       what orders those stores before other threads read
 *   V_MULS(v, p)    (optional) v times the scalar at p, rounded, for when
 *                   the broadcast is better read with the multiply than
 *                   kept in a register (default V_MUL(V_SET1(*p), v))
 *   CT_OS4_NR1, CT_OS4_NR2, CT_OS1_NR1, CT_OS1_NR2  max NR of the os
 *                   kernels for MR = 4 / 1 and P = 1 / 2 (each <= 12)
 *   CT_BW4_NR, CT_BW1_NR  max NR of the bw kernels for MR = 4 / 1
 *   CT_OSX4_NR1, CT_OSX4_NR2, CT_OSX1_NR1, CT_OSX1_NR2  max NR of the
 *                   ordered forward (osx) kernels, each >= 1
 *   CT_OSXP4_NR, CT_OSXP1_NR  max NR of their P = 2 paired path (one tap
 *                   per W-phase, both reading the same x), each >= 1
 *   CT_OSX4_TALL    max NR of osx for MR = 4, P = 1 when each tap sums many
 *                   channels (>= 1; the tile's running sums then wait in
 *                   memory while the taps' dot products fill the registers)
 *   CT_OSL4_NR, CT_OSL1_NR  max NR of the lane-folded backward-data
 *                   kernels (<= 3 and <= 7; 0: none, as for CT_V = 1)
 *
 * and it defines `static const ct_width CT_NAME(ct_width)`. The kernels are
 * one always-inline body per shape, specialised by constant MR, NR and P
 * in thin wrappers, so the tile loops unroll into registers.
 */

#define CT_INLINE static inline __attribute__((always_inline)) CT_TARGET
/* Before every loop over the tile (p, m, r, j): fully unrolled, each
 * accumulator has a constant index and stays in a register. */
#define CT_UNROLL _Pragma("GCC unroll 16")
#ifndef CT_MAX3
#define CT_MAX3(a, b, c)                                                       \
    ((a) > (b) ? ((a) > (c) ? (a) : (c)) : ((b) > (c) ? (b) : (c)))
#endif

/* A whole vector to p; with `stream`, a non-temporal store when p is
 * aligned for one (the output is large: keep it out of the caches). */
#ifdef V_STREAM
#define CT_STORE_FULL(p, v, stream)                                            \
    do {                                                                       \
        if ((stream) && ((uintptr_t)(p) % (CT_V * sizeof(CT_T))) == 0)         \
            V_STREAM((p), (v));                                                \
        else                                                                   \
            V_STORE((p), (v));                                                 \
    } while (0)
#else
#define CT_STORE_FULL(p, v, stream) ((void)(stream), V_STORE((p), (v)))
#endif

/* v times the scalar at p, each product rounded. */
#ifdef V_MULS
#define CT_MULS(v, p) V_MULS((v), (p))
#else
#define CT_MULS(v, p) V_MUL(V_SET1(*(p)), (v))
#endif

/* ---- output-stationary tile (forward, backward-data) ------------------ */

/* Stores an os tile (see ct3d_isa.h): the P == 2 phases interleaved,
 * lane-strided stores for other strides, only valid lanes and channels. */
CT_INLINE void CT_NAME(os_store)(const ct_os_args *a,
                                 CT_VEC acc[2][CT_MR_WIDE][CT_NR_CAP],
                                 const int MR, const int NR, const int P)
{
    CT_T *dst = (CT_T *)a->dst;
    const int64_t dms = a->dmstride;
    const int mv = a->mvalid;
    CT_UNROLL
    for (int r = 0; r < NR; r++) {
        const int nv = a->nvalid[r];
        CT_T *d0 = dst + a->doff[r];
        CT_UNROLL
        for (int m = 0; m < MR; m++) {
            if (m >= mv)
                break;
            CT_T *d = d0 + m * dms;
            if (P == 2) {
                CT_VEC lo, hi;
                V_ZIP(acc[0][m][r], acc[1][m][r], lo, hi);
                if (nv >= 2 * CT_V) {
                    CT_STORE_FULL(d, lo, a->stream);
                    CT_STORE_FULL(d + CT_V, hi, a->stream);
                } else if (nv > CT_V) {
                    V_STORE(d, lo);
                    V_STOREN(d + CT_V, hi, nv - CT_V);
                } else {
                    V_STOREN(d, lo, nv);
                }
            } else if (a->dstride == 1) {
                if (nv >= CT_V)
                    CT_STORE_FULL(d, acc[0][m][r], a->stream);
                else
                    V_STOREN(d, acc[0][m][r], nv);
            } else {
                CT_T tmp[CT_V];
                V_STORE(tmp, acc[0][m][r]);
                for (int l = 0; l < nv; l++)
                    d[l * a->dstride] = tmp[l];
            }
        }
    }
}

CT_INLINE void CT_NAME(os_body)(const ct_os_args *a, const int MR, const int NR,
                                const int P)
{
    CT_VEC acc[2][CT_MR_WIDE][CT_NR_CAP];
    const CT_T *src = (const CT_T *)a->src;
    const CT_T *bias = (const CT_T *)a->bias;
    const CT_T *wbase = (const CT_T *)a->wp;
    const int64_t C = a->C, cs = a->cstride;
    int64_t ro[CT_NR_CAP];
    CT_UNROLL
    for (int r = 0; r < NR; r++)
        ro[r] = a->roff[r];
    CT_UNROLL
    for (int p = 0; p < P; p++)
        CT_UNROLL
    for (int m = 0; m < MR; m++) {
        CT_VEC b0 = bias ? V_SET1(bias[m]) : V_ZERO();
        CT_UNROLL
        for (int r = 0; r < NR; r++)
            acc[p][m][r] = b0;
    }
    CT_UNROLL
    for (int p = 0; p < P; p++) {
        const int nt = a->nt[p];
        const int64_t *toff = a->toff[p], *wofs = a->wofs[p];
        for (int i = 0; i < nt; i++) {
            const CT_T *s = src + toff[i];
            const CT_T *w = wbase + wofs[i];
            for (int64_t c = 0; c < C; c++) {
                CT_VEC xv[CT_NR_CAP];
                CT_UNROLL
                for (int r = 0; r < NR; r++)
                    xv[r] = V_LOAD(s + ro[r]);
                CT_UNROLL
                for (int m = 0; m < MR; m++) {
                    CT_VEC wb = V_SET1(w[m]);
                    CT_UNROLL
                    for (int r = 0; r < NR; r++)
                        acc[p][m][r] = V_FMA(wb, xv[r], acc[p][m][r]);
                }
                s += cs;
                w += MR;
            }
        }
    }
    CT_NAME(os_store)(a, acc, MR, NR, P);
}

/* The forward in PyTorch 1.13's order of rounding (slow_conv_transpose3d
 * with reference BLAS: per tap a dot product over the channels, each
 * product rounded, summed from 0 in channel order; the taps' dot products
 * added into the output from 0 in (td, th, tw) order; the bias last), so
 * float32 outputs are PyTorch's bits (and the reference kernel's). No
 * fused multiply-add here: on CPUs with separate multiply and add pipes
 * (AMD Zen) the pair costs about what one FMA does. Taps that read the
 * zero padding add an exact +0, which changes nothing. */
CT_INLINE void CT_NAME(osx_body)(const ct_os_args *a, const int MR,
                                 const int NR, const int P)
{
    CT_VEC acc[2][CT_MR_WIDE][CT_NR_CAP];
    const CT_T *src = (const CT_T *)a->src;
    const CT_T *bias = (const CT_T *)a->bias;
    const CT_T *wbase = (const CT_T *)a->wp;
    const int64_t C = a->C, cs = a->cstride;
    int64_t ro[CT_NR_CAP];
    CT_UNROLL
    for (int r = 0; r < NR; r++)
        ro[r] = a->roff[r];
    CT_UNROLL
    for (int p = 0; p < P; p++)
        CT_UNROLL
    for (int m = 0; m < MR; m++)
        CT_UNROLL
    for (int r = 0; r < NR; r++)
        acc[p][m][r] = V_ZERO();
    if (P == 2 && a->nt[0] == 1 && a->nt[1] == 1 &&
        a->toff[0][0] == a->toff[1][0]) {
        /* One tap per W-phase, both reading the same x (k = s = 2 and
         * the like): one channel loop for both, each x vector loaded
         * once. A tap's dot product starts from +0, so it is never -0
         * and 0 + dot is dot: the sum is the dot itself. */
        const CT_T *s = src + a->toff[0][0];
        const CT_T *w0 = wbase + a->wofs[0][0], *w1 = wbase + a->wofs[1][0];
        for (int64_t c = 0; c < C; c++) {
            CT_VEC xv[CT_NR_CAP];
            CT_UNROLL
            for (int r = 0; r < NR; r++)
                xv[r] = V_LOAD(s + ro[r]);
            CT_UNROLL
            for (int m = 0; m < MR; m++)
                CT_UNROLL
            for (int r = 0; r < NR; r++) {
                acc[0][m][r] = V_ADD(acc[0][m][r], CT_MULS(xv[r], &w0[m]));
                acc[1][m][r] = V_ADD(acc[1][m][r], CT_MULS(xv[r], &w1[m]));
            }
            s += cs;
            w0 += MR;
            w1 += MR;
        }
        goto bias;
    }
    if (C == 1) {
        /* One channel per tap: its dot product is the rounded product,
         * and a running sum from +0 is never -0, so adding the product
         * itself gives the same bits as adding it to +0 first. */
        CT_UNROLL
        for (int p = 0; p < P; p++)
            for (int i = 0; i < a->nt[p]; i++) {
                const CT_T *s = src + a->toff[p][i];
                const CT_T *w = wbase + a->wofs[p][i];
                CT_VEC xv[CT_NR_CAP];
                CT_UNROLL
                for (int r = 0; r < NR; r++)
                    xv[r] = V_LOAD(s + ro[r]);
                CT_UNROLL
                for (int m = 0; m < MR; m++)
                    CT_UNROLL
                for (int r = 0; r < NR; r++)
                    acc[p][m][r] = V_ADD(acc[p][m][r], CT_MULS(xv[r], &w[m]));
            }
        goto bias;
    }
    CT_UNROLL
    for (int p = 0; p < P; p++) {
        const int nt = a->nt[p];
        const int64_t *toff = a->toff[p], *wofs = a->wofs[p];
        for (int i = 0; i < nt; i++) {
            const CT_T *s = src + toff[i];
            const CT_T *w = wbase + wofs[i];
            CT_VEC dot[CT_MR_WIDE][CT_NR_CAP];
            CT_UNROLL
            for (int m = 0; m < MR; m++)
                CT_UNROLL
            for (int r = 0; r < NR; r++)
                dot[m][r] = V_ZERO();
            for (int64_t c = 0; c < C; c++) {
                CT_VEC xv[CT_NR_CAP];
                CT_UNROLL
                for (int r = 0; r < NR; r++)
                    xv[r] = V_LOAD(s + ro[r]);
                CT_UNROLL
                for (int m = 0; m < MR; m++)
                    CT_UNROLL
                for (int r = 0; r < NR; r++)
                    dot[m][r] = V_ADD(dot[m][r], CT_MULS(xv[r], &w[m]));
                s += cs;
                w += MR;
            }
            CT_UNROLL
            for (int m = 0; m < MR; m++)
                CT_UNROLL
            for (int r = 0; r < NR; r++)
                acc[p][m][r] = V_ADD(acc[p][m][r], dot[m][r]);
        }
    }
bias:
    if (bias) {
        CT_UNROLL
        for (int p = 0; p < P; p++)
            CT_UNROLL
        for (int m = 0; m < MR; m++) {
            CT_VEC b0 = V_SET1(bias[m]);
            CT_UNROLL
            for (int r = 0; r < NR; r++)
                acc[p][m][r] = V_ADD(acc[p][m][r], b0);
        }
    }
    CT_NAME(os_store)(a, acc, MR, NR, P);
}

/* ---- lane-folded backward-data (W: k = s = 2, p = 0, d = 1) ------------ */

/* Along such a W axis input iw reads gy at ow = 2*iw + tw, so one gy row
 * vector holds both W-taps of V/2 inputs. The kernel reads gy rows where
 * they are (no split copy), multiplies them by weight vectors whose lanes
 * alternate the two W-taps, and keeps two partial vectors per output
 * vector, for gy lanes [0, V) and [V, 2V) of its 2V-wide segment; at the
 * end the lane pairs are added, out[iw] = acc[2*iw] + acc[2*iw + 1].
 * Interface as os with P = 1 and dstride 1, except: roff[r] is where
 * output vector r's segment starts, wp is [tap][c][MR][V], and a tap is
 * a (td, th) pair. V must be even. `full`: every nvalid[r] is V. */
CT_INLINE void CT_NAME(osl_loop)(const ct_os_args *a,
                                 CT_VEC acc[CT_MR_WIDE][2 * CT_NR_CAP],
                                 const int MR, const int NR, const bool full)
{
    const CT_T *src = (const CT_T *)a->src;
    const CT_T *wbase = (const CT_T *)a->wp;
    const int64_t C = a->C, cs = a->cstride;
    int64_t ro[2 * CT_NR_CAP];
    int ln[2 * CT_NR_CAP]; /* valid lanes of each source vector */
    CT_UNROLL
    for (int r = 0; r < NR; r++) {
        const int n2 = 2 * a->nvalid[r];
        ro[2 * r] = a->roff[r];
        ro[2 * r + 1] = a->roff[r] + CT_V;
        ln[2 * r] = n2 < CT_V ? n2 : CT_V;
        ln[2 * r + 1] = n2 > CT_V ? n2 - CT_V : 0;
    }
    const char *ahead = a->ahead;
    int nahead = a->nahead;
    for (int i = 0; i < a->nt[0]; i++) {
        const CT_T *s = src + a->toff[0][i];
        const CT_T *w = wbase + a->wofs[0][i];
        for (int64_t c = 0; c < C; c++) {
            if (nahead > 0) {
                __builtin_prefetch(ahead, 0, 2);
                ahead += 64;
                nahead--;
            }
            CT_VEC gv[2 * CT_NR_CAP];
            CT_UNROLL
            for (int j = 0; j < 2 * NR; j++) {
                if (full || ln[j] == CT_V)
                    gv[j] = V_LOAD(s + ro[j]);
                else if (ln[j] > 0)
                    gv[j] = V_LOADN(s + ro[j], ln[j]);
                else
                    gv[j] = V_ZERO();
            }
            CT_UNROLL
            for (int m = 0; m < MR; m++) {
                const CT_VEC wv = V_LOAD(w + m * CT_V);
                CT_UNROLL
                for (int j = 0; j < 2 * NR; j++)
                    acc[m][j] = V_FMA(wv, gv[j], acc[m][j]);
            }
            s += cs;
            w += MR * CT_V;
        }
    }
}

CT_INLINE void CT_NAME(osl_body)(const ct_os_args *a, const int MR,
                                 const int NR)
{
    CT_VEC acc[CT_MR_WIDE][2 * CT_NR_CAP];
    CT_UNROLL
    for (int m = 0; m < MR; m++)
        CT_UNROLL
    for (int j = 0; j < 2 * NR; j++)
        acc[m][j] = V_ZERO();
    bool full = true;
    for (int r = 0; r < NR; r++)
        full = full && a->nvalid[r] == CT_V;
    if (full)
        CT_NAME(osl_loop)(a, acc, MR, NR, true);
    else
        CT_NAME(osl_loop)(a, acc, MR, NR, false);
    CT_T *dst = (CT_T *)a->dst;
    CT_UNROLL
    for (int r = 0; r < NR; r++) {
        const int nv = a->nvalid[r];
        CT_UNROLL
        for (int m = 0; m < MR; m++) {
            if (m >= a->mvalid)
                break;
            CT_VEC ev, od;
            V_UNZIP(acc[m][2 * r], acc[m][2 * r + 1], ev, od);
            CT_T *d = dst + a->doff[r] + m * a->dmstride;
            if (nv >= CT_V)
                CT_STORE_FULL(d, V_ADD(ev, od), a->stream);
            else
                V_STOREN(d, V_ADD(ev, od), nv);
        }
    }
}

/* ---- weight-gradient tile ---------------------------------------------- */

CT_INLINE void CT_NAME(bw_body)(const ct_bw_args *a, const int MR, const int NR)
{
    CT_VEC acc[CT_MR_WIDE][CT_NR_CAP];
    CT_T *part = (CT_T *)a->part;
    CT_UNROLL
    for (int m = 0; m < MR; m++)
        CT_UNROLL
    for (int j = 0; j < NR; j++)
        acc[m][j] = a->part_in ? V_LOAD(part + (m * NR + j) * CT_V) : V_ZERO();
    const int64_t mcs = a->mcs, jcs = a->jcs, W = a->W;
    const int64_t Wfull = W - W % CT_V;
    const CT_T *mb = (const CT_T *)a->pm, *jb = (const CT_T *)a->pj;
    for (int64_t n = 0; n < a->nn; n++)
        for (int64_t d = 0; d < a->nd; d++) {
            /* the rows' starts for this (n, d); along h all MR rows move by
             * mhs and all NR rows by jhs, so one offset serves each side */
            const CT_T *xr[CT_MR_WIDE], *gr[CT_NR_CAP];
            CT_UNROLL
            for (int m = 0; m < MR; m++)
                xr[m] = mb + n * a->mns + d * a->mds + m * mcs;
            CT_UNROLL
            for (int j = 0; j < NR; j++)
                gr[j] = jb + n * a->jns + d * a->jds + j * jcs;
            int64_t xo = 0, go = 0;
            if (W == CT_V || W == 2 * CT_V) { /* whole vectors, 1 or 2 */
                const int nv = W == CT_V ? 1 : 2;
                for (int64_t h = 0; h < a->nh; h++) {
                    for (int v = 0; v < nv; v++) {
                        CT_VEC gv[CT_NR_CAP];
                        CT_UNROLL
                        for (int j = 0; j < NR; j++)
                            gv[j] = V_LOAD(gr[j] + go + v * CT_V);
                        CT_UNROLL
                        for (int m = 0; m < MR; m++) {
                            CT_VEC xv = V_LOAD(xr[m] + xo + v * CT_V);
                            CT_UNROLL
                            for (int j = 0; j < NR; j++)
                                acc[m][j] = V_FMA(xv, gv[j], acc[m][j]);
                        }
                    }
                    xo += a->mhs;
                    go += a->jhs;
                }
                continue;
            }
            for (int64_t h = 0; h < a->nh; h++) {
                int64_t w = 0;
                for (; w < Wfull; w += CT_V) {
                    CT_VEC gv[CT_NR_CAP];
                    CT_UNROLL
                    for (int j = 0; j < NR; j++)
                        gv[j] = V_LOAD(gr[j] + go + w);
                    CT_UNROLL
                    for (int m = 0; m < MR; m++) {
                        CT_VEC xv = V_LOAD(xr[m] + xo + w);
                        CT_UNROLL
                        for (int j = 0; j < NR; j++)
                            acc[m][j] = V_FMA(xv, gv[j], acc[m][j]);
                    }
                }
                if (w < W) {
                    const int nv = (int)(W - w);
                    CT_VEC xv[CT_MR_WIDE];
                    CT_UNROLL
                    for (int m = 0; m < MR; m++)
                        xv[m] = V_LOADN(xr[m] + xo + w, nv);
                    CT_UNROLL
                    for (int j = 0; j < NR; j++) {
                        CT_VEC gv = V_LOADN(gr[j] + go + w, nv);
                        CT_UNROLL
                        for (int m = 0; m < MR; m++)
                            acc[m][j] = V_FMA(xv[m], gv, acc[m][j]);
                    }
                }
                xo += a->mhs;
                go += a->jhs;
            }
        }
    if (a->part_out) {
        CT_UNROLL
        for (int m = 0; m < MR; m++)
            CT_UNROLL
        for (int j = 0; j < NR; j++)
            V_STORE(part + (m * NR + j) * CT_V, acc[m][j]);
        return;
    }
    /* m from 0 with a test, not from mfirst: constant indices keep acc in
     * registers */
    CT_T *out = (CT_T *)a->out;
#if CT_V % 2 == 0
    if (a->fold) {
        /* each tap's lanes summed in lane order */
        CT_UNROLL
        for (int m = 0; m < MR; m++)
            if (m >= a->mfirst) {
                CT_UNROLL
                for (int j = 0; j < NR; j++) {
                    CT_T l[CT_V];
                    V_STORE(l, acc[m][j]);
                    CT_T e = l[0], o = l[1];
                    for (int i = 2; i < CT_V; i += 2) {
                        e += l[i];
                        o += l[i + 1];
                    }
                    out[m * a->om + j * a->oj] = e;
                    out[m * a->om + j * a->oj + 1] = o;
                }
            }
        return;
    }
#endif
    CT_UNROLL
    for (int m = 0; m < MR; m++)
        if (m >= a->mfirst) {
            CT_UNROLL
            for (int j = 0; j < NR; j++)
                out[m * a->om + j * a->oj] = V_HSUM(acc[m][j]);
        }
}

/* ---- helpers for the driver's copies ----------------------------------- */

CT_TARGET static void CT_NAME(split_rows)(void *dst, const int64_t *drow,
                                          const void *src, int64_t spitch,
                                          int64_t nrows, const ct_wsplit *ws)
{
    const int64_t Gw = ws->Gw, q0 = ws->qmin, sw = ws->s;
    for (int64_t row = 0; row < nrows; row++) {
        if (drow[row] < 0)
            continue;
        const CT_T *x = (const CT_T *)src + row * spitch;
        CT_T *d = (CT_T *)dst + drow[row];
        if (ws->pair) {
            /* stride 2: one pass de-interleaves both phases */
            CT_T *e = d + ws->doff[0], *o = d + ws->doff[1];
            int64_t u = 0;
            for (; u < ws->pb0; u++) {
                e[u] = u >= ws->u0[0] && u < ws->u1[0] ? x[2 * (u + q0)] : 0;
                o[u] =
                    u >= ws->u0[1] && u < ws->u1[1] ? x[2 * (u + q0) + 1] : 0;
            }
            for (; u + CT_V <= ws->pb1; u += CT_V) {
                CT_VEC ev, od;
                const CT_T *xs = x + 2 * (u + q0);
                V_UNZIP(V_LOAD(xs), V_LOAD(xs + CT_V), ev, od);
                V_STORE(e + u, ev);
                V_STORE(o + u, od);
            }
            for (; u < Gw; u++) {
                e[u] = u >= ws->u0[0] && u < ws->u1[0] ? x[2 * (u + q0)] : 0;
                o[u] =
                    u >= ws->u0[1] && u < ws->u1[1] ? x[2 * (u + q0) + 1] : 0;
            }
            continue;
        }
        for (int64_t rw = 0; rw < sw; rw++) {
            if (ws->doff[rw] < 0)
                continue;
            CT_T *dr = d + ws->doff[rw];
            const int64_t u0 = ws->u0[rw], u1 = ws->u1[rw];
            int64_t u = 0;
            for (; u < u0; u++)
                dr[u] = 0;
            if (sw == 1) {
                for (; u + CT_V <= u1; u += CT_V)
                    V_STORE(dr + u, V_LOAD(x + (u + q0)));
                if (u < u1) {
                    V_STOREN(dr + u, V_LOADN(x + (u + q0), (int)(u1 - u)),
                             (int)(u1 - u));
                    u = u1;
                }
            } else {
                for (; u < u1; u++)
                    dr[u] = x[sw * (u + q0) + rw];
            }
            for (; u < Gw; u++)
                dr[u] = 0;
        }
    }
}

CT_TARGET static void CT_NAME(fence)(void)
{
#ifdef V_FENCE
    V_FENCE();
#endif
}

CT_TARGET static void CT_NAME(dup2)(void *dst, const void *src, int64_t n)
{
    CT_T *d = (CT_T *)dst;
    const CT_T *x = (const CT_T *)src;
    int64_t i = 0;
    for (; i + CT_V <= n; i += CT_V) {
        CT_VEC v = V_LOAD(x + i), lo, hi;
        V_ZIP(v, v, lo, hi);
        V_STORE(d + 2 * i, lo);
        V_STORE(d + 2 * i + CT_V, hi);
    }
    for (; i < n; i++)
        d[2 * i] = d[2 * i + 1] = x[i];
}

CT_TARGET static double CT_NAME(sum)(const void *src, int64_t n)
{
    /* four running vectors (one would wait on the adder's latency), lane
     * l of vector k taking elements 4*V*j + k*V + l; the tail goes to
     * vector 0; then (a0 + a1) + (a2 + a3) and the lanes */
    const CT_T *x = (const CT_T *)src;
    CT_VEC a0 = V_ZERO(), a1 = V_ZERO(), a2 = V_ZERO(), a3 = V_ZERO();
    int64_t i = 0;
    for (; i + 4 * CT_V <= n; i += 4 * CT_V) {
        a0 = V_ADD(a0, V_LOAD(x + i));
        a1 = V_ADD(a1, V_LOAD(x + i + CT_V));
        a2 = V_ADD(a2, V_LOAD(x + i + 2 * CT_V));
        a3 = V_ADD(a3, V_LOAD(x + i + 3 * CT_V));
    }
    for (; i + CT_V <= n; i += CT_V)
        a0 = V_ADD(a0, V_LOAD(x + i));
    if (i < n)
        a0 = V_ADD(a0, V_LOADN(x + i, (int)(n - i)));
    return (double)V_HSUM(V_ADD(V_ADD(a0, a1), V_ADD(a2, a3)));
}

/* ---- instantiations ---------------------------------------------------- */

#define CT_OS_DEF(MR, NR, P)                                                   \
    CT_TARGET static void CT_NAME(os_##MR##_##NR##_##P)(const ct_os_args *a)   \
    {                                                                          \
        CT_NAME(os_body)(a, MR, NR, P);                                        \
    }
#define CT_BW_DEF(MR, NR)                                                      \
    CT_TARGET static void CT_NAME(bw_##MR##_##NR)(const ct_bw_args *a)         \
    {                                                                          \
        CT_NAME(bw_body)(a, MR, NR);                                           \
    }
#define CT_FAMILY(MR, NR)                                                      \
    CT_OS_DEF(MR, NR, 1)                                                       \
    CT_OS_DEF(MR, NR, 2)                                                       \
    CT_BW_DEF(MR, NR)
#define CT_ENTRY(MR, I, NR)                                                    \
    .os[I][0][NR] = CT_NAME(os_##MR##_##NR##_1),                               \
    .os[I][1][NR] = CT_NAME(os_##MR##_##NR##_2),                               \
    .bw[I][NR] = CT_NAME(bw_##MR##_##NR),

/* The shapes up to the largest NR the instruction set uses for each MR
 * (CT_NR4, CT_NR1); the table takes each kernel up to its own maximum. */
#define CT_NR4 CT_MAX3(CT_OS4_NR1, CT_OS4_NR2, CT_BW4_NR)
#define CT_NR1 CT_MAX3(CT_OS1_NR1, CT_OS1_NR2, CT_BW1_NR)
#if CT_NR4 >= 1
CT_FAMILY(4, 1)
#endif
#if CT_NR4 >= 2
CT_FAMILY(4, 2)
#endif
#if CT_NR4 >= 3
CT_FAMILY(4, 3)
#endif
#if CT_NR4 >= 4
CT_FAMILY(4, 4)
#endif
#if CT_NR4 >= 5
CT_FAMILY(4, 5)
#endif
#if CT_NR4 >= 6
CT_FAMILY(4, 6)
#endif
#if CT_NR1 >= 1
CT_FAMILY(1, 1)
#endif
#if CT_NR1 >= 2
CT_FAMILY(1, 2)
#endif
#if CT_NR1 >= 3
CT_FAMILY(1, 3)
#endif
#if CT_NR1 >= 4
CT_FAMILY(1, 4)
#endif
#if CT_NR1 >= 5
CT_FAMILY(1, 5)
#endif
#if CT_NR1 >= 6
CT_FAMILY(1, 6)
#endif
#if CT_NR1 >= 7
CT_FAMILY(1, 7)
#endif
#if CT_NR1 >= 8
CT_FAMILY(1, 8)
#endif
#if CT_NR1 >= 9
CT_FAMILY(1, 9)
#endif
#if CT_NR1 >= 10
CT_FAMILY(1, 10)
#endif
#if CT_NR1 >= 11
CT_FAMILY(1, 11)
#endif
#if CT_NR1 >= 12
CT_FAMILY(1, 12)
#endif

#define CT_OSX_DEF(MR, NR, P)                                                  \
    CT_TARGET static void CT_NAME(osx_##MR##_##NR##_##P)(const ct_os_args *a)  \
    {                                                                          \
        CT_NAME(osx_body)(a, MR, NR, P);                                       \
    }
#define CT_OSX_FAMILY(MR, NR)                                                  \
    CT_OSX_DEF(MR, NR, 1)                                                      \
    CT_OSX_DEF(MR, NR, 2)
#define CT_OSX_ENTRY(MR, I, NR)                                                \
    .osx[I][0][NR] = CT_NAME(osx_##MR##_##NR##_1),                             \
    .osx[I][1][NR] = CT_NAME(osx_##MR##_##NR##_2),
#define CT_XNR4                                                                \
    CT_MAX3(CT_MAX3(CT_OSX4_NR1, CT_OSX4_NR2, CT_OSXP4_NR), CT_OSX4_TALL, 0)
#define CT_XNR1 CT_MAX3(CT_OSX1_NR1, CT_OSX1_NR2, CT_OSXP1_NR)
#if CT_XNR4 >= 1
CT_OSX_FAMILY(4, 1)
#endif
#if CT_XNR4 >= 2
CT_OSX_FAMILY(4, 2)
#endif
#if CT_XNR4 >= 3
CT_OSX_FAMILY(4, 3)
#endif
#if CT_XNR4 >= 4
CT_OSX_FAMILY(4, 4)
#endif
#if CT_XNR4 >= 5
CT_OSX_FAMILY(4, 5)
#endif
#if CT_XNR4 >= 6
CT_OSX_FAMILY(4, 6)
#endif
#if CT_XNR1 >= 1
CT_OSX_FAMILY(1, 1)
#endif
#if CT_XNR1 >= 2
CT_OSX_FAMILY(1, 2)
#endif
#if CT_XNR1 >= 3
CT_OSX_FAMILY(1, 3)
#endif
#if CT_XNR1 >= 4
CT_OSX_FAMILY(1, 4)
#endif
#if CT_XNR1 >= 5
CT_OSX_FAMILY(1, 5)
#endif
#if CT_XNR1 >= 6
CT_OSX_FAMILY(1, 6)
#endif
#if CT_XNR1 >= 7
CT_OSX_FAMILY(1, 7)
#endif
#if CT_XNR1 >= 8
CT_OSX_FAMILY(1, 8)
#endif
#if CT_XNR1 >= 9
CT_OSX_FAMILY(1, 9)
#endif
#if CT_XNR1 >= 10
CT_OSX_FAMILY(1, 10)
#endif
#if CT_XNR1 >= 11
CT_OSX_FAMILY(1, 11)
#endif
#if CT_XNR1 >= 12
CT_OSX_FAMILY(1, 12)
#endif

#define CT_OSL_DEF(MR, NR)                                                     \
    CT_TARGET static void CT_NAME(osl_##MR##_##NR)(const ct_os_args *a)        \
    {                                                                          \
        CT_NAME(osl_body)(a, MR, NR);                                          \
    }
#if CT_OSL4_NR >= 1
CT_OSL_DEF(4, 1)
#endif
#if CT_OSL4_NR >= 2
CT_OSL_DEF(4, 2)
#endif
#if CT_OSL4_NR >= 3
CT_OSL_DEF(4, 3)
#endif
#if CT_OSL1_NR >= 1
CT_OSL_DEF(1, 1)
#endif
#if CT_OSL1_NR >= 2
CT_OSL_DEF(1, 2)
#endif
#if CT_OSL1_NR >= 3
CT_OSL_DEF(1, 3)
#endif
#if CT_OSL1_NR >= 4
CT_OSL_DEF(1, 4)
#endif
#if CT_OSL1_NR >= 5
CT_OSL_DEF(1, 5)
#endif
#if CT_OSL1_NR >= 6
CT_OSL_DEF(1, 6)
#endif
#if CT_OSL1_NR >= 7
CT_OSL_DEF(1, 7)
#endif

static const ct_width
    CT_NAME(ct_width) =
        {
            .V = CT_V,
            .os_nr = {{CT_OS4_NR1, CT_OS4_NR2}, {CT_OS1_NR1, CT_OS1_NR2}},
            .bw_nr = {CT_BW4_NR, CT_BW1_NR},
            .osx_nr = {{CT_OSX4_NR1, CT_OSX4_NR2}, {CT_OSX1_NR1, CT_OSX1_NR2}},
            .osx_pair_nr = {CT_OSXP4_NR, CT_OSXP1_NR},
            .osx_tall_nr = CT_OSX4_TALL,
            .osl_nr = {CT_OSL4_NR, CT_OSL1_NR},
#if CT_OSL4_NR >= 1
            .osl[CT_MR4][1] = CT_NAME(osl_4_1),
#endif
#if CT_OSL4_NR >= 2
            .osl[CT_MR4][2] = CT_NAME(osl_4_2),
#endif
#if CT_OSL4_NR >= 3
            .osl[CT_MR4][3] = CT_NAME(osl_4_3),
#endif
#if CT_OSL1_NR >= 1
            .osl[CT_MR1][1] = CT_NAME(osl_1_1),
#endif
#if CT_OSL1_NR >= 2
            .osl[CT_MR1][2] = CT_NAME(osl_1_2),
#endif
#if CT_OSL1_NR >= 3
            .osl[CT_MR1][3] = CT_NAME(osl_1_3),
#endif
#if CT_OSL1_NR >= 4
            .osl[CT_MR1][4] = CT_NAME(osl_1_4),
#endif
#if CT_OSL1_NR >= 5
            .osl[CT_MR1][5] = CT_NAME(osl_1_5),
#endif
#if CT_OSL1_NR >= 6
            .osl[CT_MR1][6] = CT_NAME(osl_1_6),
#endif
#if CT_OSL1_NR >= 7
            .osl[CT_MR1][7] = CT_NAME(osl_1_7),
#endif
#if CT_XNR4 >= 1
            CT_OSX_ENTRY(4, CT_MR4, 1)
#endif
#if CT_XNR4 >= 2
                CT_OSX_ENTRY(4, CT_MR4, 2)
#endif
#if CT_XNR4 >= 3
                    CT_OSX_ENTRY(4, CT_MR4, 3)
#endif
#if CT_XNR4 >= 4
                        CT_OSX_ENTRY(4, CT_MR4, 4)
#endif
#if CT_XNR4 >= 5
                            CT_OSX_ENTRY(4, CT_MR4, 5)
#endif
#if CT_XNR4 >= 6
                                CT_OSX_ENTRY(4, CT_MR4, 6)
#endif
#if CT_XNR1 >= 1
                                    CT_OSX_ENTRY(1, CT_MR1, 1)
#endif
#if CT_XNR1 >= 2
                                        CT_OSX_ENTRY(1, CT_MR1, 2)
#endif
#if CT_XNR1 >= 3
                                            CT_OSX_ENTRY(1, CT_MR1, 3)
#endif
#if CT_XNR1 >= 4
                                                CT_OSX_ENTRY(1, CT_MR1, 4)
#endif
#if CT_XNR1 >= 5
                                                    CT_OSX_ENTRY(1, CT_MR1, 5)
#endif
#if CT_XNR1 >= 6
                                                        CT_OSX_ENTRY(1, CT_MR1,
                                                                     6)
#endif
#if CT_XNR1 >= 7
                                                            CT_OSX_ENTRY(1,
                                                                         CT_MR1,
                                                                         7)
#endif
#if CT_XNR1 >= 8
                                                                CT_OSX_ENTRY(
                                                                    1, CT_MR1,
                                                                    8)
#endif
#if CT_XNR1 >= 9
                                                                    CT_OSX_ENTRY(
                                                                        1,
                                                                        CT_MR1,
                                                                        9)
#endif
#if CT_XNR1 >= 10
                                                                        CT_OSX_ENTRY(
                                                                            1,
                                                                            CT_MR1,
                                                                            10)
#endif
#if CT_XNR1 >= 11
                                                                            CT_OSX_ENTRY(
                                                                                1,
                                                                                CT_MR1,
                                                                                11)
#endif
#if CT_XNR1 >= 12
                                                                                CT_OSX_ENTRY(
                                                                                    1,
                                                                                    CT_MR1,
                                                                                    12)
#endif
#if CT_NR4 >= 1
                                                                                    CT_ENTRY(
                                                                                        4,
                                                                                        CT_MR4,
                                                                                        1)
#endif
#if CT_NR4 >= 2
                                                                                        CT_ENTRY(
                                                                                            4,
                                                                                            CT_MR4,
                                                                                            2)
#endif
#if CT_NR4 >= 3
                                                                                            CT_ENTRY(
                                                                                                4,
                                                                                                CT_MR4,
                                                                                                3)
#endif
#if CT_NR4 >= 4
                                                                                                CT_ENTRY(
                                                                                                    4,
                                                                                                    CT_MR4,
                                                                                                    4)
#endif
#if CT_NR4 >= 5
                                                                                                    CT_ENTRY(
                                                                                                        4,
                                                                                                        CT_MR4,
                                                                                                        5)
#endif
#if CT_NR4 >= 6
                                                                                                        CT_ENTRY(
                                                                                                            4,
                                                                                                            CT_MR4,
                                                                                                            6)
#endif
#if CT_NR1 >= 1
                                                                                                            CT_ENTRY(
                                                                                                                1,
                                                                                                                CT_MR1,
                                                                                                                1)
#endif
#if CT_NR1 >= 2
                                                                                                                CT_ENTRY(
                                                                                                                    1,
                                                                                                                    CT_MR1,
                                                                                                                    2)
#endif
#if CT_NR1 >= 3
                                                                                                                    CT_ENTRY(
                                                                                                                        1,
                                                                                                                        CT_MR1,
                                                                                                                        3)
#endif
#if CT_NR1 >= 4
                                                                                                                        CT_ENTRY(
                                                                                                                            1,
                                                                                                                            CT_MR1,
                                                                                                                            4)
#endif
#if CT_NR1 >= 5
                                                                                                                            CT_ENTRY(
                                                                                                                                1,
                                                                                                                                CT_MR1,
                                                                                                                                5)
#endif
#if CT_NR1 >= 6
                                                                                                                                CT_ENTRY(
                                                                                                                                    1,
                                                                                                                                    CT_MR1,
                                                                                                                                    6)
#endif
#if CT_NR1 >= 7
                                                                                                                                    CT_ENTRY(
                                                                                                                                        1,
                                                                                                                                        CT_MR1,
                                                                                                                                        7)
#endif
#if CT_NR1 >= 8
                                                                                                                                        CT_ENTRY(1, CT_MR1, 8)
#endif
#if CT_NR1 >= 9
                                                                                                                                            CT_ENTRY(
                                                                                                                                                1,
                                                                                                                                                CT_MR1,
                                                                                                                                                9)
#endif
#if CT_NR1 >= 10
                                                                                                                                                CT_ENTRY(
                                                                                                                                                    1,
                                                                                                                                                    CT_MR1,
                                                                                                                                                    10)
#endif
#if CT_NR1 >= 11
                                                                                                                                                    CT_ENTRY(
                                                                                                                                                        1,
                                                                                                                                                        CT_MR1,
                                                                                                                                                        11)
#endif
#if CT_NR1 >= 12
                                                                                                                                                        CT_ENTRY(
                                                                                                                                                            1,
                                                                                                                                                            CT_MR1,
                                                                                                                                                            12)
#endif
                                                                                                                                                            .split_rows =
                CT_NAME(split_rows),
            .dup2 = CT_NAME(dup2),
            .fence = CT_NAME(fence),
            .sum = CT_NAME(sum),
};

#undef CT_INLINE
#undef CT_STORE_FULL
#undef CT_MULS
#undef CT_UNROLL
#undef CT_OS_DEF
#undef CT_BW_DEF
#undef CT_FAMILY
#undef CT_ENTRY
#undef CT_NR4
#undef CT_NR1
#undef CT_OSX_DEF
#undef CT_OSX_FAMILY
#undef CT_OSX_ENTRY
#undef CT_XNR4
#undef CT_XNR1
