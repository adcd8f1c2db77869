/*
 * ct3d_avx512.c -- the ConvTranspose3d micro-kernels for AVX-512 (F + VL):
 * 16 float / 8 double lanes (zmm) for long rows, and 8 / 4 lanes (ymm with
 * AVX-512VL's 32 registers and masks) for short ones; tiles of 4 x 6
 * vectors. Compiled per function with target attributes; only called when
 * the CPU has AVX-512F and VL (simd.c). Empty on other architectures.
 */
#include "ct3d_isa.h"

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define CT_CAT_(a, b) a##b
#define CT_CAT(a, b) CT_CAT_(a, b)
#define CT_TARGET __attribute__((target("avx512f,avx512vl,avx2,fma")))
#define CT_HELPER static inline __attribute__((always_inline)) CT_TARGET

/* lanes [0, n) of a mask, 1 <= n <= 16 (8) */
#define MASK16(n) ((__mmask16)((1u << (n)) - 1u))
#define MASK8(n) ((__mmask8)((1u << (n)) - 1u))

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
CT_HELPER float hsum16(__m512 v)
{
    __m256 hi =
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return hsum8(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}
CT_HELPER double hsum8d(__m512d v)
{
    return hsum4(
        _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)));
}
/* v times the scalar at p, the scalar broadcast by the multiply itself
 * ({1to16}) rather than by a vbroadcast into a register: on Zen 4 a
 * separate zmm broadcast takes a slot of the FP pipes that the multiplies
 * and adds of the forward fill (84 against 108 GFLOP/s in a loop of
 * broadcast, multiply and add), while the embedded one is part of the
 * load. Compilers keep a broadcast used several times in a register, so
 * the instruction is written out. Only for zmm: the 8-lane (ymm) forms
 * measured slower in the kernels (E's forward 32 -> 37 us), their loads
 * then limiting. */
CT_HELPER __m512 mulbc16(__m512 v, const float *p)
{
    __m512 r;
    __asm__("vmulps %2%{1to16%}, %1, %0" : "=v"(r) : "v"(v), "m"(*p));
    return r;
}
CT_HELPER __m512d mulbc8d(__m512d v, const double *p)
{
    __m512d r;
    __asm__("vmulpd %2%{1to8%}, %1, %0" : "=v"(r) : "v"(v), "m"(*p));
    return r;
}
CT_HELPER void zip16(__m512 a, __m512 b, __m512 *lo, __m512 *hi)
{
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18,
                                        2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11,
                                        26, 10, 25, 9, 24, 8);
    *lo = _mm512_permutex2var_ps(a, il, b);
    *hi = _mm512_permutex2var_ps(a, ih, b);
}
CT_HELPER void zip8d(__m512d a, __m512d b, __m512d *lo, __m512d *hi)
{
    const __m512i il = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0);
    const __m512i ih = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    *lo = _mm512_permutex2var_pd(a, il, b);
    *hi = _mm512_permutex2var_pd(a, ih, b);
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
CT_HELPER void unzip16(__m512 a, __m512 b, __m512 *ev, __m512 *od)
{
    const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12,
                                        10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13,
                                        11, 9, 7, 5, 3, 1);
    *ev = _mm512_permutex2var_ps(a, ie, b);
    *od = _mm512_permutex2var_ps(a, io, b);
}
CT_HELPER void unzip8d(__m512d a, __m512d b, __m512d *ev, __m512d *od)
{
    const __m512i ie = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i io = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    *ev = _mm512_permutex2var_pd(a, ie, b);
    *od = _mm512_permutex2var_pd(a, io, b);
}

#define V_FENCE() _mm_sfence()
#define CT_OS4_NR1 6
#define CT_OS4_NR2 3
#define CT_OS1_NR1 12
#define CT_OS1_NR2 12
#define CT_BW4_NR 6
#define CT_OSX4_NR1 3
#define CT_OSX4_NR2 3
#define CT_OSX1_NR1 12
#define CT_OSX1_NR2 8
#define CT_OSXP4_NR 3
#define CT_OSXP1_NR 8
#define CT_OSX4_TALL 6
#define CT_OSL4_NR 3
#define CT_OSL1_NR 7
#define CT_BW1_NR 12

/* ---- float32, 16 lanes (zmm) ---- */
#define CT_T float
#define CT_VEC __m512
#define CT_V 16
#define CT_NAME(x) CT_CAT(x, _avx512_f32_16)
#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(s) _mm512_set1_ps(s)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOADN(p, n) _mm512_maskz_loadu_ps(MASK16(n), (p))
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_STREAM(p, v) _mm512_stream_ps((p), (v))
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps((p), MASK16(n), (v))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_MULS(v, p) mulbc16((v), (p))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_ZIP(a, b, lo, hi) zip16((a), (b), &(lo), &(hi))
#define V_UNZIP(a, b, e, o) unzip16((a), (b), &(e), &(o))
#define V_HSUM(v) hsum16(v)
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
#undef V_MULS
#undef V_ADD
#undef V_ZIP
#undef V_UNZIP
#undef V_HSUM

/* ---- float32, 8 lanes (ymm, AVX-512VL masks) ---- */
#define CT_T float
#define CT_VEC __m256
#define CT_V 8
#define CT_NAME(x) CT_CAT(x, _avx512_f32_8)
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(s) _mm256_set1_ps(s)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOADN(p, n) _mm256_maskz_loadu_ps(MASK8(n), (p))
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_STREAM(p, v) _mm256_stream_ps((p), (v))
#define V_STOREN(p, v, n) _mm256_mask_storeu_ps((p), MASK8(n), (v))
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
#undef V_MULS
#undef V_ADD
#undef V_ZIP
#undef V_UNZIP
#undef V_HSUM

/* ---- float64, 8 lanes (zmm) ---- */
#define CT_T double
#define CT_VEC __m512d
#define CT_V 8
#define CT_NAME(x) CT_CAT(x, _avx512_f64_8)
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(s) _mm512_set1_pd(s)
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_LOADN(p, n) _mm512_maskz_loadu_pd(MASK8(n), (p))
#define V_STORE(p, v) _mm512_storeu_pd((p), (v))
#define V_STREAM(p, v) _mm512_stream_pd((p), (v))
#define V_STOREN(p, v, n) _mm512_mask_storeu_pd((p), MASK8(n), (v))
#define V_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define V_MUL(a, b) _mm512_mul_pd((a), (b))
#define V_MULS(v, p) mulbc8d((v), (p))
#define V_ADD(a, b) _mm512_add_pd((a), (b))
#define V_ZIP(a, b, lo, hi) zip8d((a), (b), &(lo), &(hi))
#define V_UNZIP(a, b, e, o) unzip8d((a), (b), &(e), &(o))
#define V_HSUM(v) hsum8d(v)
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
#undef V_MULS
#undef V_ADD
#undef V_ZIP
#undef V_UNZIP
#undef V_HSUM

/* ---- float64, 4 lanes (ymm, AVX-512VL masks) ---- */
#define CT_T double
#define CT_VEC __m256d
#define CT_V 4
#define CT_NAME(x) CT_CAT(x, _avx512_f64_4)
#define V_ZERO() _mm256_setzero_pd()
#define V_SET1(s) _mm256_set1_pd(s)
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_LOADN(p, n) _mm256_maskz_loadu_pd(MASK8(n), (p))
#define V_STORE(p, v) _mm256_storeu_pd((p), (v))
#define V_STREAM(p, v) _mm256_stream_pd((p), (v))
#define V_STOREN(p, v, n) _mm256_mask_storeu_pd((p), MASK8(n), (v))
#define V_FMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define V_MUL(a, b) _mm256_mul_pd((a), (b))
#define V_ADD(a, b) _mm256_add_pd((a), (b))
#define V_ZIP(a, b, lo, hi) zip4((a), (b), &(lo), &(hi))
#define V_UNZIP(a, b, e, o) unzip4((a), (b), &(e), &(o))
#define V_HSUM(v) hsum4(v)
#include "ct3d_template.h"

const ct_isa cg__ct3d_avx512_f32 = {
    2, {&ct_width_avx512_f32_16, &ct_width_avx512_f32_8}};
const ct_isa cg__ct3d_avx512_f64 = {
    2, {&ct_width_avx512_f64_8, &ct_width_avx512_f64_4}};

#else /* not x86: never selected (simd.c detects nothing) */
const ct_isa cg__ct3d_avx512_f32 = {0, {NULL, NULL}};
const ct_isa cg__ct3d_avx512_f64 = {0, {NULL, NULL}};
#endif
