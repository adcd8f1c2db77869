/*
 * ct3d_avx2.c -- the ConvTranspose3d micro-kernels for AVX2 + FMA: 8 float
 * or 4 double lanes (ymm), 16 vector registers, so tiles of 4 x 3 vectors.
 * Compiled per function with target attributes; only called when the CPU
 * has AVX2 and FMA (simd.c). Empty on other architectures.
 */
#include "ct3d_isa.h"

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define CT_CAT_(a, b) a##b
#define CT_CAT(a, b) CT_CAT_(a, b)
#define CT_TARGET __attribute__((target("avx2,fma")))
#define CT_HELPER static inline __attribute__((always_inline)) CT_TARGET

/* lanes [0, n) set, as the sign bits maskload / maskstore read */
CT_HELPER __m256i mask8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
CT_HELPER __m256i mask4(int n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n),
                              _mm256_setr_epi64x(0, 1, 2, 3));
}
CT_HELPER float hsum8(__m256 v)
{
    __m128 s =
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
CT_HELPER double hsum4(__m256d v)
{
    __m128d s =
        _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
CT_HELPER void zip8(__m256 a, __m256 b, __m256 *lo, __m256 *hi)
{
    __m256 l = _mm256_unpacklo_ps(a, b), h = _mm256_unpackhi_ps(a, b);
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}
CT_HELPER void zip4(__m256d a, __m256d b, __m256d *lo, __m256d *hi)
{
    __m256d l = _mm256_unpacklo_pd(a, b), h = _mm256_unpackhi_pd(a, b);
    *lo = _mm256_permute2f128_pd(l, h, 0x20);
    *hi = _mm256_permute2f128_pd(l, h, 0x31);
}
CT_HELPER void unzip8(__m256 a, __m256 b, __m256 *ev, __m256 *od)
{
    /* per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6, then halves reordered */
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    __m256 o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    *ev = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
    *od = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(o), _MM_SHUFFLE(3, 1, 2, 0)));
}
CT_HELPER void unzip4(__m256d a, __m256d b, __m256d *ev, __m256d *od)
{
    *ev = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b),
                                _MM_SHUFFLE(3, 1, 2, 0));
    *od = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b),
                                _MM_SHUFFLE(3, 1, 2, 0));
}

#define V_FENCE() _mm_sfence()
#define CT_OS4_NR1 3
#define CT_OS4_NR2 1
#define CT_OS1_NR1 12
#define CT_OS1_NR2 6
#define CT_BW4_NR 3
#define CT_OSX4_NR1 1
#define CT_OSX4_NR2 2
#define CT_OSX1_NR1 6
#define CT_OSX1_NR2 4
#define CT_OSXP4_NR 1
#define CT_OSXP1_NR 4
#define CT_OSX4_TALL 2
#define CT_OSL4_NR 1
#define CT_OSL1_NR 3
#define CT_BW1_NR 12

/* ---- float32, 8 lanes ---- */
#define CT_T float
#define CT_VEC __m256
#define CT_V 8
#define CT_NAME(x) CT_CAT(x, _avx2_f32)
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(s) _mm256_set1_ps(s)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOADN(p, n) _mm256_maskload_ps((p), mask8(n))
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_STREAM(p, v) _mm256_stream_ps((p), (v))
#define V_STOREN(p, v, n) _mm256_maskstore_ps((p), mask8(n), (v))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_ZIP(a, b, lo, hi) zip8((a), (b), &(lo), &(hi))
#define V_UNZIP(a, b, e, o) unzip8((a), (b), &(e), &(o))
#define V_HSUM(v) hsum8(v)
#include "ct3d_template.h"
#undef CT_T
#undef CT_VEC
#undef CT_V
#undef CT_NAME
#undef V_ZERO
#undef V_SET1
#undef V_LOAD
#undef V_LOADN
#undef V_STORE
#undef V_STREAM
#undef V_STOREN
#undef V_FMA
#undef V_MUL
#undef V_ADD
#undef V_ZIP
#undef V_UNZIP
#undef V_HSUM

/* ---- float64, 4 lanes ---- */
#define CT_T double
#define CT_VEC __m256d
#define CT_V 4
#define CT_NAME(x) CT_CAT(x, _avx2_f64)
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(s) _mm256_set1_pd(s)
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_LOADN(p, n) _mm256_maskload_pd((p), mask4(n))
#define V_STORE(p, v) _mm256_storeu_pd((p), (v))
#define V_STREAM(p, v) _mm256_stream_pd((p), (v))
#define V_STOREN(p, v, n) _mm256_maskstore_pd((p), mask4(n), (v))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define V_MUL(a, b) _mm256_mul_pd((a), (b))
#define V_ADD(a, b) _mm256_add_pd((a), (b))
#define V_ZIP(a, b, lo, hi) zip4((a), (b), &(lo), &(hi))
#define V_UNZIP(a, b, e, o) unzip4((a), (b), &(e), &(o))
#define V_HSUM(v) hsum4(v)
#include "ct3d_template.h"

const ct_isa cg__ct3d_avx2_f32 = {1, {&ct_width_avx2_f32, NULL}};
const ct_isa cg__ct3d_avx2_f64 = {1, {&ct_width_avx2_f64, NULL}};

#else /* not x86: never selected (simd.c detects nothing) */
const ct_isa cg__ct3d_avx2_f32 = {0, {NULL, NULL}};
const ct_isa cg__ct3d_avx2_f64 = {0, {NULL, NULL}};
#endif
