/*
 * ct3d_portable.c -- the ConvTranspose3d micro-kernels in plain C (one
 * lane per "vector"), for every CPU and for CGRAD_SIMD=off. They are the
 * reference the vector variants are tested against, through the driver.
 * Products and sums are rounded separately (a*b + c, never contracted:
 * the build uses -ffp-contract=off), so their results differ from the
 * fused vector variants' by rounding only.
 */
#include "ct3d_isa.h"

#include <stddef.h>

#define CT_CAT_(a, b) a##b
#define CT_CAT(a, b) CT_CAT_(a, b)

#define CT_TARGET
#define CT_V 1
#define V_ZERO() ((CT_T)0)
#define V_SET1(s) ((CT_T)(s))
#define V_LOAD(p) (*(p))
#define V_LOADN(p, n) ((void)(n), *(p))
#define V_STORE(p, v) (*(p) = (v))
#define V_STOREN(p, v, n) ((void)(n), *(p) = (v))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_MUL(a, b) ((a) * (b))
#define V_ADD(a, b) ((a) + (b))
#define V_ZIP(a, b, lo, hi) ((lo) = (a), (hi) = (b))
#define V_UNZIP(a, b, ev, od) ((ev) = (a), (od) = (b))
#define V_HSUM(v) (v)
#define CT_OS4_NR1 4
#define CT_OS4_NR2 2
#define CT_OS1_NR1 8
#define CT_OS1_NR2 4
#define CT_BW4_NR 4
#define CT_OSX4_NR1 2
#define CT_OSX4_NR2 1
#define CT_OSX1_NR1 4
#define CT_OSX1_NR2 2
#define CT_OSXP4_NR 1
#define CT_OSXP1_NR 2
#define CT_OSX4_TALL 2
#define CT_OSL4_NR 0
#define CT_OSL1_NR 0
#define CT_BW1_NR 8

#define CT_T float
#define CT_VEC float
#define CT_NAME(x) CT_CAT(x, _portable_f32)
#include "ct3d_template.h"
#undef CT_T
#undef CT_VEC
#undef CT_NAME

#define CT_T double
#define CT_VEC double
#define CT_NAME(x) CT_CAT(x, _portable_f64)
#include "ct3d_template.h"
#undef CT_T
#undef CT_VEC
#undef CT_NAME

const ct_isa cg__ct3d_portable_f32 = {1, {&ct_width_portable_f32, NULL}};
const ct_isa cg__ct3d_portable_f64 = {1, {&ct_width_portable_f64, NULL}};
