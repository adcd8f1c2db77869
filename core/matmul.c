/*
 * matmul.c -- matrix products (PyTorch 1.13, CPU): mm, bmm, and matmul with
 * PyTorch's dispatch, over float32, float64, complex64 and complex128.
 *
 *   mm(a, b)     MmBackward0    ga = gy @ conj(b)^T      gb = conj(a)^T @ gy
 *   bmm(a, b)    BmmBackward0   the same per batch
 *   mv(m, v)     MvBackward0    gm = gy conj(v)^T (outer) gv = conj(m)^T gy
 *   dot(a, b)    DotBackward0   ga = gy conj(b)          gb = gy conj(a)
 *
 * matmul is composed exactly as at::matmul composes it in 1.13, so the
 * recorded chain is PyTorch's: 1-D x 1-D is a dot, 2-D x 1-D an mv, 2-D x
 * 2-D an mm, 1-D x 2-D is unsqueeze(0).mm().squeeze_(0) (SqueezeBackward3
 * over MmBackward0 over UnsqueezeBackward0). A >=3-D operand against a 1-D
 * or 2-D one is folded into one mm/mv (reshape, then _unsafe_view back;
 * when the larger operand is on the right both are transposed first and
 * the result is transposed back and made contiguous), except for a 3-D
 * left operand whose last two dims are transposed in memory. Everything
 * else broadcasts the batch dims: expand, reshape to 3-D, bmm,
 * _unsafe_view. Errors come from the op that meets them, as in PyTorch.
 *
 * The kernel: C (M x N) = op(A) (M x K) @ op(B) (K x N), op an optional
 * conjugation, A and B with any strides. Shapes in the loops:
 *   for pc over K in blocks of KC:                   (C += A[:, pc] B[pc, :])
 *     for jc over N in blocks of NC: pack B[pc, jc] into NR-column slivers
 *       for ic over M in blocks of MC: pack A[ic, pc] into MR-row slivers
 *         for jr (NR slivers; a pool chunk each), ir (MR slivers):
 *           micro-kernel: an MR x NR tile of C += sliver(A) sliver(B)
 * Accumulation is in double (complex: a pair of doubles) for every dtype:
 * packing converts float32 to double exactly, and float32/complex64 results
 * collect in a double buffer that is rounded once at the end. The
 * micro-kernel starts from the tile of C and adds the K products of a
 * block in order, so every element of C is
 *   ((((0 + a_0 b_0) + a_1 b_1) + ...) + a_{K-1} b_{K-1})
 * whatever the blocking, the same order as the reference loop beside it
 * (reference_<dtype>, bitwise equal; tests hold them to each other through
 * cg__mm_reference). The pool
 * splits only over output tiles, never over K, so the thread count cannot
 * change a result.
 *
 * Not here: addmm/baddbmm, out= variants, matrix-vector fast paths
 * (mv and dot run the same kernel with N = 1).
 */
#include "ops_internal.h"
#include "simd_internal.h"
#include "threadpool_internal.h"

#include <string.h>

/* ======================================================================
 * The kernel
 * ====================================================================== */

enum {
    MC = 64,                     /* rows of A per packed block */
    KC = 256,                    /* depth per packed block */
    NC = 256,                    /* columns of B per packed block */
    MR = 4,                      /* micro-tile rows */
    NR = 8,                      /* micro-tile columns (real) */
    NR_Z = 4,                    /* micro-tile columns (complex) */
    PARALLEL_MIN_WORK = 1 << 15, /* multiply-adds below which a block runs
                                    on the calling thread */
    PACK_PARALLEL_MIN = 1 << 14, /* elements below which a block is packed
                                    on the calling thread */
};

typedef struct zacc {
    double re, im;
} zacc;

/* c + a*b, written once: the blocked kernel and the reference both use
 * these, so they round identically. */
static inline double d_madd(double c, double a, double b)
{
    return c + a * b;
}

static inline zacc z_madd(zacc c, zacc a, zacc b)
{
    zacc r = {c.re + (a.re * b.re - a.im * b.im),
              c.im + (a.re * b.im + a.im * b.re)};
    return r;
}

/* One operand: element (i, j) at base + i*rs + j*cs (in elements), read
 * conjugated when `conj` (complex only). */
typedef struct operand {
    const char *base;
    int64_t rs, cs;
    bool conj;
} operand;

/* Loaders: element (i, j) of an operand, converted to the accumulator. */
#define DEFINE_LOAD_REAL(S, T)                                                 \
    static inline double load_##S(const operand *o, int64_t i, int64_t j)      \
    {                                                                          \
        return (double)((const T *)o->base)[i * o->rs + j * o->cs];            \
    }
#define DEFINE_LOAD_CPLX(S, T)                                                 \
    static inline zacc load_##S(const operand *o, int64_t i, int64_t j)        \
    {                                                                          \
        const T *q = (const T *)o->base + 2 * (i * o->rs + j * o->cs);         \
        zacc z = {(double)q[0], o->conj ? -(double)q[1] : (double)q[1]};       \
        return z;                                                              \
    }

/* The micro-kernel, one per accumulator type: acc (mr x nr valid of an
 * MR_ x NR_ tile) = C tile + a sliver (kc x MR_) times b sliver (kc x NR_). */
#define DEFINE_KERNEL(A, ACC, NR_, MADD)                                       \
    static void kernel_##A(int64_t kc, const void *pa, const void *pb,         \
                           void *pc, int64_t ldc, int64_t mr, int64_t nr)      \
    {                                                                          \
        const ACC *a = pa, *b = pb;                                            \
        ACC *c = pc;                                                           \
        ACC acc[MR][NR_];                                                      \
        memset(acc, 0, sizeof acc);                                            \
        for (int64_t i = 0; i < mr; i++)                                       \
            for (int64_t j = 0; j < nr; j++)                                   \
                acc[i][j] = c[i * ldc + j];                                    \
        for (int64_t p = 0; p < kc; p++, a += MR, b += NR_)                    \
            for (int i = 0; i < MR; i++)                                       \
                for (int j = 0; j < NR_; j++)                                  \
                    acc[i][j] = MADD(acc[i][j], a[i], b[j]);                   \
        for (int64_t i = 0; i < mr; i++)                                       \
            for (int64_t j = 0; j < nr; j++)                                   \
                c[i * ldc + j] = acc[i][j];                                    \
    }
DEFINE_KERNEL(d, double, NR, d_madd)
DEFINE_KERNEL(z, zacc, NR_Z, z_madd)

/* The real micro-kernel in AVX2 and AVX-512 (target attributes;
 * cg__simd_level picks at run time): a row of the tile per vector (two
 * for AVX2), each product and each sum rounded apart as in d_madd (no
 * fused multiply-add; -ffp-contract=off), so the same bits as kernel_d. */
#if defined(__x86_64__) || defined(__i386__)
#define GEMM_X86 1
#include <immintrin.h>

/* The tile of C to start from: the mr x nr valid part, zeros around. */
static void tile_in(const double *c, int64_t ldc, int64_t mr, int64_t nr,
                    double t[MR][NR])
{
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            t[i][j] = i < mr && j < nr ? c[i * ldc + j] : 0.0;
}

static void tile_out(const double t[MR][NR], double *c, int64_t ldc, int64_t mr,
                     int64_t nr)
{
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = t[i][j];
}

__attribute__((target("avx512f"))) static void
kernel_d_avx512(int64_t kc, const void *pa, const void *pb, void *pc,
                int64_t ldc, int64_t mr, int64_t nr)
{
    _Static_assert(MR == 4 && NR == 8, "one zmm per row of the tile");
    const double *a = pa, *b = pb;
    double t[MR][NR];
    tile_in(pc, ldc, mr, nr, t);
    __m512d c0 = _mm512_loadu_pd(t[0]), c1 = _mm512_loadu_pd(t[1]),
            c2 = _mm512_loadu_pd(t[2]), c3 = _mm512_loadu_pd(t[3]);
    for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
        const __m512d bv = _mm512_loadu_pd(b);
        c0 = _mm512_add_pd(c0, _mm512_mul_pd(_mm512_set1_pd(a[0]), bv));
        c1 = _mm512_add_pd(c1, _mm512_mul_pd(_mm512_set1_pd(a[1]), bv));
        c2 = _mm512_add_pd(c2, _mm512_mul_pd(_mm512_set1_pd(a[2]), bv));
        c3 = _mm512_add_pd(c3, _mm512_mul_pd(_mm512_set1_pd(a[3]), bv));
    }
    _mm512_storeu_pd(t[0], c0);
    _mm512_storeu_pd(t[1], c1);
    _mm512_storeu_pd(t[2], c2);
    _mm512_storeu_pd(t[3], c3);
    tile_out((const double(*)[NR])t, pc, ldc, mr, nr);
}

__attribute__((target("avx2"))) static void
kernel_d_avx2(int64_t kc, const void *pa, const void *pb, void *pc, int64_t ldc,
              int64_t mr, int64_t nr)
{
    _Static_assert(NR == 8, "two ymm per row of the tile");
    const double *a = pa, *b = pb;
    double t[MR][NR];
    tile_in(pc, ldc, mr, nr, t);
    __m256d lo[MR], hi[MR];
    for (int i = 0; i < MR; i++) {
        lo[i] = _mm256_loadu_pd(t[i]);
        hi[i] = _mm256_loadu_pd(t[i] + 4);
    }
    for (int64_t p = 0; p < kc; p++, a += MR, b += NR) {
        const __m256d bl = _mm256_loadu_pd(b), bh = _mm256_loadu_pd(b + 4);
        for (int i = 0; i < MR; i++) {
            const __m256d ai = _mm256_set1_pd(a[i]);
            lo[i] = _mm256_add_pd(lo[i], _mm256_mul_pd(ai, bl));
            hi[i] = _mm256_add_pd(hi[i], _mm256_mul_pd(ai, bh));
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_pd(t[i], lo[i]);
        _mm256_storeu_pd(t[i] + 4, hi[i]);
    }
    tile_out((const double(*)[NR])t, pc, ldc, mr, nr);
}
#endif

/* Per dtype: the loader, packing (with zero padding to whole slivers), the
 * reference loop, and the final rounding of the accumulator to the dtype. */
#define DEFINE_GEMM_DTYPE(S, T, ACC, NR_, MADD, ROUND, DEFINE_LOAD)            \
    DEFINE_LOAD(S, T)                                                          \
    static void pack_a_##S(const operand *A, int64_t i0, int64_t mc,           \
                           int64_t p0, int64_t kc, void *dst)                  \
    {                                                                          \
        ACC *d = dst, zero;                                                    \
        memset(&zero, 0, sizeof zero);                                         \
        for (int64_t ir = 0; ir < mc; ir += MR)                                \
            for (int64_t p = 0; p < kc; p++)                                   \
                for (int64_t i = ir; i < ir + MR; i++)                         \
                    *d++ = i < mc ? load_##S(A, i0 + i, p0 + p) : zero;        \
    }                                                                          \
    static void pack_b_##S(const operand *B, int64_t p0, int64_t kc,           \
                           int64_t j0, int64_t nc, void *dst)                  \
    {                                                                          \
        ACC *d = dst, zero;                                                    \
        memset(&zero, 0, sizeof zero);                                         \
        for (int64_t jr = 0; jr < nc; jr += NR_)                               \
            for (int64_t p = 0; p < kc; p++)                                   \
                for (int64_t j = jr; j < jr + NR_; j++)                        \
                    *d++ = j < nc ? load_##S(B, p0 + p, j0 + j) : zero;        \
    }                                                                          \
    static void reference_##S(int64_t M, int64_t N, int64_t K,                 \
                              const operand *A, const operand *B, void *c)     \
    {                                                                          \
        ACC *acc = c;                                                          \
        for (int64_t i = 0; i < M; i++)                                        \
            for (int64_t j = 0; j < N; j++) {                                  \
                ACC s;                                                         \
                memset(&s, 0, sizeof s);                                       \
                for (int64_t p = 0; p < K; p++)                                \
                    s = MADD(s, load_##S(A, i, p), load_##S(B, p, j));         \
                acc[i * N + j] = s;                                            \
            }                                                                  \
    }                                                                          \
    static void round_##S(const void *src, void *dst, int64_t n)               \
    {                                                                          \
        const ACC *s = src;                                                    \
        T *d = dst;                                                            \
        for (int64_t i = 0; i < n; i++)                                        \
            ROUND(d, i, s[i]);                                                 \
    }

#define ROUND_REAL(d, i, v) ((d)[i] = (v))
#define ROUND_CPLX(d, i, v) ((d)[2 * (i)] = (v).re, (d)[2 * (i) + 1] = (v).im)

#define GEMM_DTYPES(X)                                                         \
    X(f32, float, double, NR, d_madd, ROUND_REAL, DEFINE_LOAD_REAL)            \
    X(f64, double, double, NR, d_madd, ROUND_REAL, DEFINE_LOAD_REAL)           \
    X(c64, float, zacc, NR_Z, z_madd, ROUND_CPLX, DEFINE_LOAD_CPLX)            \
    X(c128, double, zacc, NR_Z, z_madd, ROUND_CPLX, DEFINE_LOAD_CPLX)
GEMM_DTYPES(DEFINE_GEMM_DTYPE)

typedef struct gemm_kind {
    size_t acc_size;
    int64_t nr;
    bool exact_acc; /* the accumulator is the dtype: C is the output */
    void (*pack_a)(const operand *, int64_t, int64_t, int64_t, int64_t, void *);
    void (*pack_b)(const operand *, int64_t, int64_t, int64_t, int64_t, void *);
    void (*kernel)(int64_t, const void *, const void *, void *, int64_t,
                   int64_t, int64_t);
    void (*reference)(int64_t, int64_t, int64_t, const operand *,
                      const operand *, void *);
    void (*round)(const void *, void *, int64_t);
} gemm_kind;

static const gemm_kind gemm_kinds[CG_DTYPE_COUNT] = {
    [CG_FLOAT32] = {sizeof(double), NR, false, pack_a_f32, pack_b_f32, kernel_d,
                    reference_f32, round_f32},
    [CG_FLOAT64] = {sizeof(double), NR, true, pack_a_f64, pack_b_f64, kernel_d,
                    reference_f64, round_f64},
    [CG_COMPLEX64] = {sizeof(zacc), NR_Z, false, pack_a_c64, pack_b_c64,
                      kernel_z, reference_c64, round_c64},
    [CG_COMPLEX128] = {sizeof(zacc), NR_Z, true, pack_a_c128, pack_b_c128,
                       kernel_z, reference_c128, round_c128},
};

/* A product of `batch` pairs of matrices, its shapes and scratch. */
typedef struct gemm_job {
    const gemm_kind *k;
    /* k's micro-kernel, or its vector version for the SIMD level */
    void (*kernel)(int64_t, const void *, const void *, void *, int64_t,
                   int64_t, int64_t);
    int64_t M, N, K;
    char *pack_a, *pack_b; /* MC x KC and KC x NC slivers */
    char *acc;             /* M x N accumulators (when !exact_acc) */
    /* the block being computed, for the pool */
    char *c;
    int64_t ic, mc, jc, nc, kc;
} gemm_job;

static int64_t round_up(int64_t x, int64_t m)
{
    return (x + m - 1) / m * m;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Allocates the scratch of a job (nothing when it has no work). */
static cg_status gemm_job_init(gemm_job *j, cg_dtype dt, int64_t M, int64_t N,
                               int64_t K)
{
    memset(j, 0, sizeof *j);
    j->k = &gemm_kinds[dt];
    j->kernel = j->k->kernel;
#ifdef GEMM_X86
    if (j->kernel == kernel_d) {
        switch (cg__simd_level()) {
        case CG_SIMD_AVX512:
            j->kernel = kernel_d_avx512;
            break;
        case CG_SIMD_AVX2:
            j->kernel = kernel_d_avx2;
            break;
        default:
            break;
        }
    }
#endif
    j->M = M;
    j->N = N;
    j->K = K;
    if (M == 0 || N == 0 || K == 0)
        return CG_OK;
    size_t sz = j->k->acc_size;
    size_t na = (size_t)round_up(min64(M, MC), MR) * (size_t)min64(K, KC) * sz;
    size_t nb =
        (size_t)min64(K, KC) * (size_t)round_up(min64(N, NC), j->k->nr) * sz;
    size_t nc = j->k->exact_acc ? 0 : (size_t)M * (size_t)N * sz;
    j->pack_a = cg__malloc(na);
    j->pack_b = cg__malloc(nb);
    j->acc = nc ? cg__calloc(1, nc) : NULL;
    if (!j->pack_a || !j->pack_b || (nc && !j->acc)) {
        cg__free(j->pack_a);
        cg__free(j->pack_b);
        cg__free(j->acc);
        memset(j, 0, sizeof *j);
        return cg__error_nomem(!j->pack_a ? na : !j->pack_b ? nb : nc);
    }
    return CG_OK;
}

static void gemm_job_free(gemm_job *j)
{
    cg__free(j->pack_a);
    cg__free(j->pack_b);
    cg__free(j->acc);
}

/* Pool chunks: NR-column slivers of the current (ic, jc) block. */
static void gemm_slivers(void *ctx, int64_t begin, int64_t end)
{
    const gemm_job *j = ctx;
    const gemm_kind *k = j->k;
    size_t sz = k->acc_size;
    for (int64_t s = begin; s < end; s++) {
        int64_t jr = s * k->nr;
        int64_t nr = min64(k->nr, j->nc - jr);
        const char *b = j->pack_b + (size_t)(s * j->kc * k->nr) * sz;
        for (int64_t ir = 0; ir < j->mc; ir += MR) {
            const char *a = j->pack_a + (size_t)(ir * j->kc) * sz;
            char *c = j->c + (size_t)((j->ic + ir) * j->N + j->jc + jr) * sz;
            j->kernel(j->kc, a, b, c, j->N, min64(MR, j->mc - ir), nr);
        }
    }
}

/* Packing a block on the pool, a run of slivers per chunk: each sliver
 * is a copy of its own, so who packs it changes nothing. */
typedef struct pack_job {
    const gemm_job *j;
    const operand *src;
    bool b; /* packing B (else A) */
    int64_t p0;
} pack_job;

static void pack_slivers(void *ctx, int64_t begin, int64_t end)
{
    const pack_job *pj = ctx;
    const gemm_job *j = pj->j;
    const gemm_kind *k = j->k;
    const size_t sz = k->acc_size;
    if (pj->b) {
        int64_t j0 = begin * k->nr,
                n = min64(j->nc - j0, (end - begin) * k->nr);
        k->pack_b(pj->src, pj->p0, j->kc, j->jc + j0, n,
                  j->pack_b + (size_t)(j0 * j->kc) * sz);
    } else {
        int64_t i0 = begin * MR, m = min64(j->mc - i0, (end - begin) * MR);
        k->pack_a(pj->src, j->ic + i0, m, pj->p0, j->kc,
                  j->pack_a + (size_t)(i0 * j->kc) * sz);
    }
}

/* Packs the current block of B (b) or A (!b): on the pool when it is
 * large enough to be worth a job. */
static void pack(const gemm_job *j, const operand *src, bool b, int64_t p0)
{
    pack_job pj = {j, src, b, p0};
    const int64_t slivers =
        b ? (j->nc + j->k->nr - 1) / j->k->nr : (j->mc + MR - 1) / MR;
    if ((b ? j->nc : j->mc) * j->kc >= PACK_PARALLEL_MIN)
        cg__parallel_for(slivers, pack_slivers, &pj);
    else
        pack_slivers(&pj, 0, slivers);
}

/* out (contiguous M x N of the dtype, zeroed) = op(A) @ op(B). */
static void gemm_run(gemm_job *j, const operand *A, const operand *B, void *out)
{
    const gemm_kind *k = j->k;
    int64_t M = j->M, N = j->N, K = j->K;
    if (M == 0 || N == 0 || K == 0)
        return; /* out is already zero */
    j->c = k->exact_acc ? out : j->acc;
    if (!k->exact_acc)
        memset(j->acc, 0, (size_t)(M * N) * k->acc_size);
    for (int64_t pc = 0; pc < K; pc += KC) {
        j->kc = min64(KC, K - pc);
        for (j->jc = 0; j->jc < N; j->jc += NC) {
            j->nc = min64(NC, N - j->jc);
            pack(j, B, true, pc);
            int64_t slivers = (j->nc + k->nr - 1) / k->nr;
            for (j->ic = 0; j->ic < M; j->ic += MC) {
                j->mc = min64(MC, M - j->ic);
                pack(j, A, false, pc);
                if (j->mc * j->nc * j->kc >= PARALLEL_MIN_WORK)
                    cg__parallel_for(slivers, gemm_slivers, j);
                else
                    gemm_slivers(j, 0, slivers);
            }
        }
    }
    if (!k->exact_acc)
        k->round(j->acc, out, M * N);
}

/* A matrix operand of a tensor: rows along dim r, columns along dim c
 * (-1: a single row/column, stride 0), starting at storage index `at`. */
static operand mat_of(const cg_tensor *t, int64_t at, int r, int c, bool conj)
{
    operand o = {(const char *)t->storage->data, r >= 0 ? t->strides[r] : 0,
                 c >= 0 ? t->strides[c] : 0,
                 conj && cg_dtype_is_complex(t->dtype)};
    /* base points at element `at`: fold it into the loaders' indexing */
    o.base += (size_t)at * cg__elsize(t);
    return o;
}

/* out[b] = op(A[b]) @ op(B[b]) for b < batch; A[b] starts `sa` elements
 * after A[b-1] (likewise B). out is a new contiguous (batch, M, N) block
 * of zeros, of A's dtype. */
static cg_status gemm_batched(cg_dtype dt, int64_t batch, int64_t M, int64_t N,
                              int64_t K, operand A, int64_t sa, operand B,
                              int64_t sb, cg_tensor *out)
{
    gemm_job j;
    cg_status st = gemm_job_init(&j, dt, M, N, K);
    if (st != CG_OK)
        return st;
    size_t el = cg_dtype_size(dt);
    for (int64_t b = 0; b < batch; b++) {
        operand a = A, bb = B;
        a.base += (size_t)(b * sa) * el;
        bb.base += (size_t)(b * sb) * el;
        gemm_run(&j, &a, &bb,
                 (char *)out->storage->data + (size_t)(b * M * N) * el);
    }
    gemm_job_free(&j);
    return CG_OK;
}

/* The reference loop for a @ b (2-D, same dtype), for tests: the blocked
 * kernel must match it bitwise. Not declared in a header on purpose. */
cg_status cg__mm_reference(cg_tensor *a, cg_tensor *b, cg_tensor **out);
cg_status cg__mm_reference(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    if (!a || !b || !out)
        return cg__error_null("argument");
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0] ||
        a->dtype != b->dtype)
        return cg__error(CG_ERR_RUNTIME, "cg__mm_reference: bad operands");
    int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
    int64_t shape[2] = {M, N};
    const gemm_kind *k = &gemm_kinds[a->dtype];
    cg_tensor *r;
    cg_status st = cg__tensor_new(shape, 2, a->dtype, &r);
    if (st != CG_OK)
        return st;
    size_t bytes = (size_t)(M * N) * k->acc_size;
    void *acc = cg__malloc(bytes ? bytes : 1);
    if (!acc) {
        cg_tensor_release(r);
        return cg__error_nomem(bytes);
    }
    operand A = mat_of(a, a->offset, 0, 1, false);
    operand B = mat_of(b, b->offset, 0, 1, false);
    k->reference(M, N, K, &A, &B, acc);
    k->round(acc, r->storage->data, M * N);
    cg__free(acc);
    *out = r;
    return CG_OK;
}

/* ======================================================================
 * The ops: checks in PyTorch's order, forward, backward, node
 * ====================================================================== */

static cg_status check_args(const cg_tensor *a, const cg_tensor *b,
                            cg_tensor **out)
{
    if (!a)
        return cg__error_null("self");
    if (!b)
        return cg__error_null("other");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

static cg_status dtype_mismatch(const cg_tensor *a, const cg_tensor *b)
{
    return cg__error(CG_ERR_RUNTIME, "expected scalar type %s but found %s",
                     cg__dtype_scalar_name(a->dtype),
                     cg__dtype_scalar_name(b->dtype));
}

/* Records `op` on r over (a, b), saving a when b needs a gradient and b
 * when a does (only what the backward will read, as PyTorch does). On
 * failure r is released. */
static cg_status record_product(cg_tensor *r, const cg_op_def *op, cg_tensor *a,
                                cg_tensor *b, cg_tensor **out)
{
    cg_tensor *in[2] = {a, b};
    cg_node *node;
    cg_status st = cg__record(r, op, in, 2, 0, &node, NULL);
    if (st == CG_OK && node) {
        if (cg__needs_grad(node, 1))
            st = cg__save(node, 0, a, false);
        if (st == CG_OK && cg__needs_grad(node, 0))
            st = cg__save(node, 1, b, false);
    }
    if (st != CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    *out = r;
    return CG_OK;
}

/* A new zeroed result of a's dtype, then out = op(A) @ op(B) batched. */
static cg_status product(cg_dtype dt, const int64_t *shape, int ndim,
                         int64_t batch, int64_t M, int64_t N, int64_t K,
                         operand A, int64_t sa, operand B, int64_t sb,
                         cg_tensor **out)
{
    cg_tensor *r;
    cg_status st = cg__tensor_new(shape, ndim, dt, &r);
    if (st != CG_OK)
        return st;
    if ((st = gemm_batched(dt, batch, M, N, K, A, sa, B, sb, r)) != CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    *out = r;
    return CG_OK;
}

/* ---- mm: MmBackward0 ----------------------------------------------------- */

static cg_status mm_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *a = NULL, *b = NULL;
    cg_status st;
    int64_t M = gy->shape[0], N = gy->shape[1];
    if (cg__needs_grad(node, 0)) { /* ga (M x K) = gy @ conj(b)^T */
        if ((st = cg__saved(node, 1, &b)) != CG_OK)
            return st;
        int64_t K = b->shape[0], shape[2] = {M, K};
        if ((st = product(gy->dtype, shape, 2, 1, M, K, N,
                          mat_of(gy, gy->offset, 0, 1, false), 0,
                          mat_of(b, b->offset, 1, 0, true), 0, &gx[0])) !=
            CG_OK)
            return st;
    }
    if (cg__needs_grad(node, 1)) { /* gb (K x N) = conj(a)^T @ gy */
        if ((st = cg__saved(node, 0, &a)) != CG_OK)
            return st;
        int64_t K = a->shape[1], shape[2] = {K, N};
        if ((st = product(gy->dtype, shape, 2, 1, K, N, M,
                          mat_of(a, a->offset, 1, 0, true), 0,
                          mat_of(gy, gy->offset, 0, 1, false), 0, &gx[1])) !=
            CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def mm_op = {"MmBackward0", mm_backward, NULL};

cg_status cg_mm(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    cg_status st = check_args(a, b, out);
    if (st != CG_OK)
        return st;
    if (a->ndim != 2)
        return cg__error(CG_ERR_RUNTIME, "self must be a matrix");
    if (b->ndim != 2)
        return cg__error(CG_ERR_RUNTIME, "mat2 must be a matrix");
    if (a->shape[1] != b->shape[0])
        return cg__error(CG_ERR_RUNTIME,
                         "mat1 and mat2 shapes cannot be multiplied (%lldx%lld "
                         "and %lldx%lld)",
                         (long long)a->shape[0], (long long)a->shape[1],
                         (long long)b->shape[0], (long long)b->shape[1]);
    if (a->dtype != b->dtype)
        return dtype_mismatch(a, b);
    int64_t M = a->shape[0], K = a->shape[1], N = b->shape[1];
    int64_t shape[2] = {M, N};
    cg_tensor *r;
    if ((st = product(a->dtype, shape, 2, 1, M, N, K,
                      mat_of(a, a->offset, 0, 1, false), 0,
                      mat_of(b, b->offset, 0, 1, false), 0, &r)) != CG_OK)
        return st;
    return record_product(r, &mm_op, a, b, out);
}

/* ---- bmm: BmmBackward0 --------------------------------------------------- */

static cg_status bmm_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *a = NULL, *b = NULL;
    cg_status st;
    int64_t B = gy->shape[0], M = gy->shape[1], N = gy->shape[2];
    if (cg__needs_grad(node, 0)) { /* ga[i] = gy[i] @ conj(b[i])^T */
        if ((st = cg__saved(node, 1, &b)) != CG_OK)
            return st;
        int64_t K = b->shape[1], shape[3] = {B, M, K};
        if ((st = product(gy->dtype, shape, 3, B, M, K, N,
                          mat_of(gy, gy->offset, 1, 2, false), gy->strides[0],
                          mat_of(b, b->offset, 2, 1, true), b->strides[0],
                          &gx[0])) != CG_OK)
            return st;
    }
    if (cg__needs_grad(node, 1)) { /* gb[i] = conj(a[i])^T @ gy[i] */
        if ((st = cg__saved(node, 0, &a)) != CG_OK)
            return st;
        int64_t K = a->shape[2], shape[3] = {B, K, N};
        if ((st = product(gy->dtype, shape, 3, B, K, N, M,
                          mat_of(a, a->offset, 2, 1, true), a->strides[0],
                          mat_of(gy, gy->offset, 1, 2, false), gy->strides[0],
                          &gx[1])) != CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def bmm_op = {"BmmBackward0", bmm_backward, NULL};

cg_status cg_bmm(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    cg_status st = check_args(a, b, out);
    if (st != CG_OK)
        return st;
    if (a->ndim != 3)
        return cg__error(CG_ERR_RUNTIME, "batch1 must be a 3D tensor");
    if (b->ndim != 3)
        return cg__error(CG_ERR_RUNTIME, "batch2 must be a 3D tensor");
    if (b->shape[0] != a->shape[0] || b->shape[1] != a->shape[2])
        return cg__error(CG_ERR_RUNTIME,
                         "Expected size for first two dimensions of batch2 "
                         "tensor to be: [%lld, %lld] but got: [%lld, %lld].",
                         (long long)a->shape[0], (long long)a->shape[2],
                         (long long)b->shape[0], (long long)b->shape[1]);
    if (a->dtype != b->dtype)
        return dtype_mismatch(a, b);
    int64_t B = a->shape[0], M = a->shape[1], K = a->shape[2], N = b->shape[2];
    int64_t shape[3] = {B, M, N};
    cg_tensor *r;
    if ((st = product(a->dtype, shape, 3, B, M, N, K,
                      mat_of(a, a->offset, 1, 2, false), a->strides[0],
                      mat_of(b, b->offset, 1, 2, false), b->strides[0], &r)) !=
        CG_OK)
        return st;
    return record_product(r, &bmm_op, a, b, out);
}

/* ---- mv: MvBackward0 (internal: matmul's 2-D x 1-D) ---------------------- */

static cg_status mv_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *m = NULL, *v = NULL;
    cg_status st;
    int64_t M = gy->shape[0];
    if (cg__needs_grad(node, 0)) { /* gm (M x K) = gy (M x 1) conj(v) (1 x K) */
        if ((st = cg__saved(node, 1, &v)) != CG_OK)
            return st;
        int64_t K = v->shape[0], shape[2] = {M, K};
        if ((st = product(gy->dtype, shape, 2, 1, M, K, 1,
                          mat_of(gy, gy->offset, 0, -1, false), 0,
                          mat_of(v, v->offset, -1, 0, true), 0, &gx[0])) !=
            CG_OK)
            return st;
    }
    if (cg__needs_grad(node, 1)) { /* gv (K) = conj(m)^T (K x M) gy (M x 1) */
        if ((st = cg__saved(node, 0, &m)) != CG_OK)
            return st;
        int64_t K = m->shape[1];
        if ((st = product(
                 gy->dtype, &K, 1, 1, K, 1, M, mat_of(m, m->offset, 1, 0, true),
                 0, mat_of(gy, gy->offset, 0, -1, false), 0, &gx[1])) != CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def mv_op = {"MvBackward0", mv_backward, NULL};

static cg_status mv(cg_tensor *m, cg_tensor *v, cg_tensor **out)
{
    if (m->shape[1] != v->shape[0])
        return cg__error(CG_ERR_RUNTIME,
                         "size mismatch, got %lld, %lldx%lld,%lld",
                         (long long)m->shape[0], (long long)m->shape[0],
                         (long long)m->shape[1], (long long)v->shape[0]);
    if (m->dtype != v->dtype)
        return dtype_mismatch(m, v);
    int64_t M = m->shape[0], K = m->shape[1];
    cg_tensor *r;
    cg_status st =
        product(m->dtype, &M, 1, 1, M, 1, K, mat_of(m, m->offset, 0, 1, false),
                0, mat_of(v, v->offset, 0, -1, false), 0, &r);
    if (st != CG_OK)
        return st;
    return record_product(r, &mv_op, m, v, out);
}

/* ---- dot: DotBackward0 (internal: matmul's 1-D x 1-D) -------------------- */

static cg_status dot_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *a = NULL, *b = NULL;
    cg_status st;
    /* g (K) = conj(other) (K x 1) gy (1 x 1) */
    if (cg__needs_grad(node, 0)) {
        if ((st = cg__saved(node, 1, &b)) != CG_OK)
            return st;
        if ((st = product(gy->dtype, b->shape, 1, 1, b->shape[0], 1, 1,
                          mat_of(b, b->offset, 0, -1, true), 0,
                          mat_of(gy, gy->offset, -1, -1, false), 0, &gx[0])) !=
            CG_OK)
            return st;
    }
    if (cg__needs_grad(node, 1)) {
        if ((st = cg__saved(node, 0, &a)) != CG_OK)
            return st;
        if ((st = product(gy->dtype, a->shape, 1, 1, a->shape[0], 1, 1,
                          mat_of(a, a->offset, 0, -1, true), 0,
                          mat_of(gy, gy->offset, -1, -1, false), 0, &gx[1])) !=
            CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def dot_op = {"DotBackward0", dot_backward, NULL};

static cg_status dot(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    if (a->dtype != b->dtype)
        return cg__error(CG_ERR_RUNTIME,
                         "dot : expected both vectors to have same dtype, but "
                         "found %s and %s",
                         cg__dtype_scalar_name(a->dtype),
                         cg__dtype_scalar_name(b->dtype));
    if (a->shape[0] != b->shape[0])
        return cg__error(CG_ERR_RUNTIME,
                         "inconsistent tensor size, expected tensor [%lld] and "
                         "src [%lld] to have the same number of elements, but "
                         "got %lld and %lld elements respectively",
                         (long long)a->shape[0], (long long)b->shape[0],
                         (long long)a->shape[0], (long long)b->shape[0]);
    cg_tensor *r;
    cg_status st = product(a->dtype, NULL, 0, 1, 1, 1, a->shape[0],
                           mat_of(a, a->offset, -1, 0, false), 0,
                           mat_of(b, b->offset, 0, -1, false), 0, &r);
    if (st != CG_OK)
        return st;
    return record_product(r, &dot_op, a, b, out);
}

/* ======================================================================
 * matmul: at::matmul's composition
 * ====================================================================== */

/* _unsafe_view and squeeze_(0) on a fresh contiguous result: a view with
 * the new shape whose backward reshapes the gradient back. */
typedef struct reshape_ctx {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
} reshape_ctx;

static cg_status reshape_back(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const reshape_ctx *c = node->ctx;
    return cg_tensor_reshape(gy, c->shape, c->ndim, &gx[0]);
}

static const cg_op_def unsafe_view_op = {"UnsafeViewBackward0", reshape_back,
                                         NULL};
/* squeeze_(dim), PyTorch's in-place squeeze: SqueezeBackward3 */
static const cg_op_def squeeze_inplace_op = {"SqueezeBackward3", reshape_back,
                                             NULL};

/* *out = t (contiguous) viewed with `shape`, recording `op`. Consumes t. */
static cg_status view_as(cg_tensor *t, const int64_t *shape, int ndim,
                         const cg_op_def *op, cg_tensor **out)
{
    cg_tensor *v;
    cg_status st = cg__tensor_view_of(t, shape, NULL, ndim, t->offset, &v);
    reshape_ctx *ctx = NULL;
    if (st == CG_OK && (st = cg__record(v, op, &t, 1, sizeof *ctx, NULL,
                                        (void **)&ctx)) != CG_OK)
        cg_tensor_release(v);
    if (st == CG_OK && ctx) {
        ctx->ndim = t->ndim;
        memcpy(ctx->shape, t->shape, sizeof ctx->shape);
    }
    cg_tensor_release(t);
    if (st == CG_OK)
        *out = v;
    return st;
}

/* 1-D x 2-D: a.unsqueeze(0).mm(b).squeeze_(0). */
static cg_status vec_mat(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    cg_tensor *a2 = NULL, *r = NULL;
    cg_status st = cg_tensor_unsqueeze(a, 0, &a2);
    if (st == CG_OK)
        st = cg_mm(a2, b, &r);
    cg_tensor_release(a2);
    if (st != CG_OK)
        return st;
    return view_as(r, &r->shape[1], 1, &squeeze_inplace_op, out);
}

/* at::native's should_fold: true when t1 (>= 3-D) against a 1-D or 2-D
 * operand can be folded into one mm/mv, unless t1 is 3-D with its last two
 * dims transposed in memory (then bmm transposes each product instead). */
static bool should_fold(const cg_tensor *t1, int dim2)
{
    if (t1->ndim < 3 || (dim2 != 1 && dim2 != 2))
        return false;
    if (t1->ndim == 3 && dim2 == 2 && t1->strides[2] != 1 &&
        t1->strides[0] == t1->shape[1] * t1->shape[2])
        return false;
    return true;
}

static int64_t prod(const int64_t *s, int n)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++)
        p *= s[i];
    return p;
}

/* A >= 3-D operand against a 1-D/2-D one, as one mm or mv. */
static cg_status matmul_folded(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    bool transpose = b->ndim > a->ndim;
    cg_tensor *t1 = NULL, *t2 = NULL, *f = NULL, *r = NULL, *v = NULL,
              *vt = NULL;
    cg_status st = CG_OK;
    if (!transpose) {
        t1 = cg_tensor_retain(a);
        t2 = cg_tensor_retain(b);
    } else if ((st = cg_tensor_transpose(b, -2, -1, &t1)) == CG_OK) {
        if (a->ndim == 2)
            st = cg_tensor_t(a, &t2);
        else
            t2 = cg_tensor_retain(a);
    }
    int64_t shape[CG_MAX_DIMS + 1];
    int n = 0;
    if (st == CG_OK) {
        n = t1->ndim - 1;
        memcpy(shape, t1->shape, (size_t)n * sizeof *shape);
        int64_t folded[2] = {prod(shape, n), t1->shape[n]};
        if (t2->ndim == 2)
            shape[n++] = t2->shape[1];
        st = cg_tensor_reshape(t1, folded, 2, &f);
    }
    if (st == CG_OK)
        st = t2->ndim == 2 ? cg_mm(f, t2, &r) : mv(f, t2, &r);
    if (st == CG_OK) {
        st = view_as(r, shape, n, &unsafe_view_op, &v);
        r = NULL;
    }
    if (st == CG_OK && transpose && t2->ndim == 2) {
        st = cg_tensor_transpose(v, -2, -1, &vt);
        cg_tensor_release(v);
        v = NULL;
        if (st == CG_OK)
            st = cg_tensor_contiguous(vt, &v);
    }
    cg_tensor_release(t1);
    cg_tensor_release(t2);
    cg_tensor_release(f);
    cg_tensor_release(r);
    cg_tensor_release(vt);
    if (st == CG_OK)
        *out = v;
    return st;
}

/* Both operands >= 1-D, one >= 3-D: broadcast the batch dims, bmm. */
static cg_status matmul_batched(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    int d1 = a->ndim, d2 = b->ndim;
    int64_t n = d1 > 1 ? a->shape[d1 - 2] : 1, m1 = a->shape[d1 - 1];
    int64_t m2 = d2 > 1 ? b->shape[d2 - 2] : b->shape[0];
    int64_t p = d2 > 1 ? b->shape[d2 - 1] : 1;
    int64_t shape[CG_MAX_DIMS + 2], s1[CG_MAX_DIMS + 2], s2[CG_MAX_DIMS + 2];
    int nb;
    cg_status st = cg__broadcast_dims(a->shape, d1 > 2 ? d1 - 2 : 0, b->shape,
                                      d2 > 2 ? d2 - 2 : 0, shape, &nb);
    if (st != CG_OK)
        return st;
    memcpy(s1, shape, (size_t)nb * sizeof *shape);
    memcpy(s2, shape, (size_t)nb * sizeof *shape);
    s1[nb] = n;
    s1[nb + 1] = m1;
    s2[nb] = m2;
    s2[nb + 1] = p;
    int64_t batch = prod(shape, nb);
    int64_t r1[3] = {batch, n, m1}, r2[3] = {batch, m2, p};
    cg_tensor *e1 = NULL, *e2 = NULL, *t1 = NULL, *t2 = NULL, *r = NULL;
    if ((st = cg_tensor_expand(a, s1, nb + 2, &e1)) == CG_OK &&
        (st = cg_tensor_reshape(e1, r1, 3, &t1)) == CG_OK &&
        (st = cg_tensor_expand(b, s2, nb + 2, &e2)) == CG_OK &&
        (st = cg_tensor_reshape(e2, r2, 3, &t2)) == CG_OK)
        st = cg_bmm(t1, t2, &r);
    cg_tensor_release(e1);
    cg_tensor_release(e2);
    cg_tensor_release(t1);
    cg_tensor_release(t2);
    if (st != CG_OK)
        return st;
    if (d1 > 1)
        shape[nb++] = n;
    if (d2 > 1)
        shape[nb++] = p;
    return view_as(r, shape, nb, &unsafe_view_op, out);
}

cg_status cg_matmul(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    cg_status st = check_args(a, b, out);
    if (st != CG_OK)
        return st;
    int d1 = a->ndim, d2 = b->ndim;
    if (d1 == 0 || d2 == 0)
        return cg__error(CG_ERR_RUNTIME,
                         "both arguments to matmul need to be at least 1D, but "
                         "they are %dD and %dD",
                         d1, d2);
    if (d1 == 1 && d2 == 1)
        return dot(a, b, out);
    if (d1 == 2 && d2 == 1)
        return mv(a, b, out);
    if (d1 == 1 && d2 == 2)
        return vec_mat(a, b, out);
    if (d1 == 2 && d2 == 2)
        return cg_mm(a, b, out);
    if (should_fold(a, d2) || should_fold(b, d1))
        return matmul_folded(a, b, out);
    return matmul_batched(a, b, out);
}
