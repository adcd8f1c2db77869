/*
 * ct3d_isa.h -- the micro-kernel interface between the ConvTranspose3d
 * driver (conv_transpose3d_fast.c) and its per-instruction-set kernels
 * (ct3d_portable.c, ct3d_avx2.c, ct3d_avx512.c, all instantiated from
 * ct3d_template.h). Never installed.
 *
 * Two kernel shapes cover the three passes; both hold an MR x NR tile of
 * vectors (V lanes along the innermost spatial axis) in registers:
 *
 *  - "os" (output-stationary): forward and backward-data.
 *      acc[p][m][r] = init[m] + sum_{i < nt[p]} sum_{c < C}
 *                     wp[wofs[p][i] + c*MR + m] *
 *                     src[roff[r] + toff[p][i] + c*cstride + lane]
 *    for m < MR output channels (weights broadcast), r < NR vectors, and
 *    p < P W-phases (P = 2 holds both W-phases of a stride-2 transposed
 *    convolution and interleaves them in registers, so the output row is
 *    written contiguously and exactly once). Lane l of vector r of channel
 *    m goes to dst[m*dmstride + doff[r] + l*dstride] (P = 1) or, for
 *    P = 2, phase p lane l to dst[m*dmstride + doff[r] + 2*l + p]; only
 *    the first nvalid[r] elements and channels m < mvalid are stored.
 *    The sum runs in a fixed order: i, then c.
 *
 *  - "bw" (backward-weights): an MR x NR tile of partial-sum vectors, the
 *    MR side and the NR side each a set of rows (in the driver: MR output
 *    channels of the split gy, NR input channels of x),
 *      out[m*om + j*oj] = sum over n < nn, d < nd, h < nh, w < W of
 *                         pm[m*mcs + n*mns + d*mds + h*mhs + w] *
 *                         pj[j*jcs + n*jns + d*jds + h*jhs + w],
 *    lanes summed at the end in a fixed order; only m >= mfirst stored.
 *    (n, d, h, w) are walked in that order, w in vectors of V lanes. A
 *    long walk may be cut into pieces: the partial-sum vectors then start
 *    from `part` (part_in) and end there (part_out) instead of in out,
 *    which gives bitwise the sums of the uncut walk.
 *
 * The kernels read only what these formulas name (tails are masked), so
 * the driver need not pad rows to whole vectors.
 */
#ifndef CGRAD_CT3D_ISA_H
#define CGRAD_CT3D_ISA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest NR any instantiation uses. */
#define CT_NR_CAP 12

typedef struct ct_os_args {
    const void *src;        /* source base (x or the split gy) */
    const int64_t *roff;    /* [NR] source offset of each vector */
    int nt[2];              /* taps of each W-phase */
    const int64_t *toff[2]; /* [nt] source offset of each tap */
    const int64_t *wofs[2]; /* [nt] packed-weight offset of each tap */
    int64_t C;              /* channels summed per tap */
    int64_t cstride;        /* source distance between two channels */
    const void *wp;         /* packed weights, [tap][c][MR] blocks */
    const void *bias;       /* MR initial values, or NULL for zero */
    void *dst;              /* destination base */
    const int64_t *doff;    /* [NR] destination offset of each vector */
    int64_t dmstride;       /* destination distance between channels */
    int64_t dstride;        /* distance between lanes (P = 1) */
    const int *nvalid;      /* [NR] elements to store (<= V, P*V) */
    int mvalid;             /* channels to store (<= MR) */
    int stream;             /* non-temporal stores where aligned: a big
                               output; the chunk ends with fence() */
    const char *ahead;      /* osl: one 64-byte line from here is fetched */
    int nahead;             /* per channel step, nahead lines (a hint) */
} ct_os_args;

typedef struct ct_bw_args {
    const void *pm; /* MR-side rows: pm + m*mcs + n*mns + ... */
    int64_t mcs, mns, mds, mhs;
    const void *pj; /* NR-side rows: pj + j*jcs + n*jns + ... */
    int64_t jcs, jns, jds, jhs;
    int64_t nn, nd, nh;    /* rows walked: n < nn, d < nd, h < nh */
    int64_t W;             /* row length */
    void *out;             /* result of channel pair (m, j) */
    int64_t om, oj;        /* at out + m*om + j*oj */
    int mfirst;            /* store only m >= mfirst */
    void *part;            /* MR*NR*V partial sums between pieces */
    int part_in, part_out; /* start from / end in part */
    /* the lanes hold two taps in turn (V even): the even lanes' sum goes
     * to out + m*om + j*oj, the odd lanes' to the element after it */
    int fold;
} ct_bw_args;

/* How a gy row is split along W into phases (see the driver): element u
 * of phase rw is src[s*(u + qmin) + rw] for u in [u0[rw], u1[rw]) and 0
 * for the other u < Gw; phase rw goes to dst + doff[rw] (doff < 0: not
 * used). pair: s == 2 with both phases used, which hold values together
 * on [pb0, pb1). */
typedef struct ct_wsplit {
    int64_t s, qmin, Gw;
    const int64_t *u0, *u1, *doff; /* [s] */
    int pair;
    int64_t pb0, pb1;
} ct_wsplit;

typedef void (*ct_os_fn)(const ct_os_args *a);
typedef void (*ct_bw_fn)(const ct_bw_args *a);

/* MR of the two kernel families: a wide one, and MR = 1 for problems
 * with a single channel on the broadcast side. */
#define CT_MR_WIDE 4
/* Channels per tap from which the forward takes the tall osx tiles. */
#define CT_TALL_C 8
enum { CT_MR4 = 0, CT_MR1 = 1 };

/** The kernels of one vector width of one instruction set and dtype.
 *  os[mr][P-1][nr] and bw[mr][nr] are defined for 1 <= nr <= the
 *  matching os_nr / bw_nr. */
typedef struct ct_width {
    int V;           /* lanes */
    int os_nr[2][2]; /* max NR [mr][P-1] */
    ct_os_fn os[2][2][CT_NR_CAP + 1];
    /* the forward in PyTorch's order of rounding (see the template):
     * the same interface as os, the bias added last */
    int osx_nr[2][2];
    ct_os_fn osx[2][2][CT_NR_CAP + 1];
    /* max NR [mr] of osx[mr][1] when each W-phase has one tap and both
     * read the same x (k = s = 2): no separate sums, x loaded once */
    int osx_pair_nr[2];
    /* max NR of osx[CT_MR4][0] when a tap sums at least CT_TALL_C
     * channels (its dot products take the registers, the running sums
     * are spilled and reloaded once per tap) or one (no dot products) */
    int osx_tall_nr;
    /* backward-data for W with k = s = 2, p = 0, d = 1, reading gy rows
     * unsplit (see the template); osl[mr][nr] for 1 <= nr <= osl_nr[mr],
     * none when osl_nr is 0 */
    int osl_nr[2];
    ct_os_fn osl[2][CT_NR_CAP + 1];
    int bw_nr[2]; /* max NR [mr] */
    ct_bw_fn bw[2][CT_NR_CAP + 1];
    /* the W-split of nrows rows: row r from src + r*spitch to
     * dst + drow[r] (skipped when drow[r] < 0) */
    void (*split_rows)(void *dst, const int64_t *drow, const void *src,
                       int64_t spitch, int64_t nrows, const ct_wsplit *ws);
    /* dst[2*i] = dst[2*i + 1] = src[i] for i < n */
    void (*dup2)(void *dst, const void *src, int64_t n);
    /* orders the non-temporal stores of `stream` kernels (store fence) */
    void (*fence)(void);
    /* sum of n elements in a fixed order (lanes, then a fixed tree) */
    double (*sum)(const void *src, int64_t n);
} ct_width;

/** One instruction set, one dtype: its vector widths, widest first. */
typedef struct ct_isa {
    int nw;
    const ct_width *w[2];
} ct_isa;

extern const ct_isa cg__ct3d_portable_f32, cg__ct3d_portable_f64;
extern const ct_isa cg__ct3d_avx2_f32, cg__ct3d_avx2_f64;
extern const ct_isa cg__ct3d_avx512_f32, cg__ct3d_avx512_f64;

#endif /* CGRAD_CT3D_ISA_H */
