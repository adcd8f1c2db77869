/*
 * ops_internal.h -- what elementwise and broadcasting ops share (see
 * broadcast.c): broadcast shapes, dtype promotion (PyTorch's result_type),
 * a strided elementwise loop, and per-dtype scalar arithmetic for writing a
 * kernel once for all dtypes. Never installed.
 */
#ifndef CGRAD_OPS_INTERNAL_H
#define CGRAD_OPS_INTERNAL_H

#include "autograd_internal.h"

#include <math.h>

/* ======================================================================
 * Broadcasting and type promotion
 * ====================================================================== */

/** The broadcast of shapes a (na dims) and b (nb dims), right-aligned as in
 *  PyTorch's infer_size: out gets max(na, nb) sizes, *ndim their count.
 *  RuntimeError "The size of tensor a (3) must match the size of tensor b
 *  (4) at non-singleton dimension 1" (the first mismatch from the right,
 *  numbered in the output). out may alias neither input. */
cg_status cg__broadcast_dims(const int64_t *a, int na, const int64_t *b, int nb,
                             int64_t *out, int *ndim);
/** cg__broadcast_dims of two tensors' shapes. */
cg_status cg__broadcast_shapes(const cg_tensor *a, const cg_tensor *b,
                               int64_t *out_shape, int *ndim);

/** torch.promote_types for cgrad's dtypes: float32 < float64, real <
 *  complex, and a complex result keeps the wider precision (float64 +
 *  complex64 = complex128). */
cg_dtype cg__promote(cg_dtype a, cg_dtype b);
/** torch.result_type(a, b) for two tensors: a 0-d tensor does not raise
 *  the precision of a dimensioned one within the same category (float32
 *  [3] * float64 0-d = float32), but a higher category wins with the
 *  dimensioned tensor's precision (float32 [3] * complex128 0-d =
 *  complex64). */
cg_dtype cg__result_type(const cg_tensor *a, const cg_tensor *b);
/** result_type of a tensor of dtype dt with a Python scalar ("wrapped
 *  number"): a float never changes dt; a complex makes it complex of dt's
 *  precision. */
cg_dtype cg__result_type_scalar(cg_dtype dt, bool complex_scalar);

/* ======================================================================
 * Elementwise loops
 *
 * A kernel is an inner loop over n elements: data[0] is the output,
 * data[1..] the inputs, each advanced by its own stride in bytes (0 for a
 * broadcast input). The driver walks the outer dimensions and calls it
 * once per innermost run, so a kernel sees long runs whenever operands are
 * contiguous (dimensions are coalesced first).
 * ====================================================================== */

#define CG_LOOP_MAX_ARGS 4 /* the output and up to three inputs */

/** Scalar parameters of a kernel: a scalar operand (re, im) and an extra
 *  real parameter (exponent, slope, a mode). */
typedef struct cg_kparams {
    double re, im;
    double p;
    int mode;
} cg_kparams;

typedef void (*cg_loop_fn)(char *const *data, const int64_t *strides, int64_t n,
                           const cg_kparams *params);

/** One kernel per dtype, indexed by cg_dtype; NULL where unsupported. */
typedef cg_loop_fn cg_kernel_table[CG_DTYPE_COUNT];

/** The geometry of an elementwise loop after broadcasting and coalescing. */
typedef struct cg_loop {
    int nargs; /* output + inputs */
    int ndim;  /* coalesced dimensions (0: one element) */
    int64_t numel;
    int64_t shape[CG_MAX_DIMS];                     /* outermost first */
    int64_t strides[CG_LOOP_MAX_ARGS][CG_MAX_DIMS]; /* bytes */
    char *data[CG_LOOP_MAX_ARGS]; /* first element of each operand */
} cg_loop;

/** Prepares a loop writing `out` from ins[0..nin) (nin < CG_LOOP_MAX_ARGS),
 *  each of which must broadcast to out's shape (checked by the caller). */
void cg__loop_init(cg_loop *l, cg_tensor *out, const cg_tensor *const *ins,
                   int nin);
/** Runs fn over out's elements [begin, end) in row-major order. */
void cg__loop_run(const cg_loop *l, cg_loop_fn fn, const cg_kparams *params,
                  int64_t begin, int64_t end);

/** A new contiguous tensor of shape/out_dt with out[i] = fn(ins[..][i]):
 *  inputs not of dtype in_dt are converted as they are read (a few hundred
 *  elements at a time, never a whole copy); they must broadcast to
 *  `shape`. Large loops run on the thread pool in fixed
 *  chunks (bitwise the same for any thread count). No autograd. */
cg_status cg__map(const int64_t *shape, int ndim, cg_dtype out_dt,
                  const cg_tensor *const *ins, int nin, cg_dtype in_dt,
                  cg_loop_fn fn, const cg_kparams *params, cg_tensor **out);

/* ======================================================================
 * Per-dtype scalar arithmetic, for kernels written once per dtype
 *
 * CG_FOR_ALL_DTYPES(X) expands X(S, T, R) for each dtype: S its suffix
 * (f32 f64 c64 c128), T its element type, R its real type. For each S
 * there are helpers cg__<S>_<op>: of (a scalar from double re, im), add,
 * sub, mul, div, neg, conj, abs (-> R), sgn (z/|z|, 0 at 0), exp, log,
 * sqrt, tanh, powg (pow), ipow (a ** p with PyTorch's fast cases, see
 * cg__pow_mode). Complex values are (re, im) pairs as
 * PyTorch stores them; multiplication is the plain formula and division
 * Smith's scaled one (c10::complex's); transcendental complex functions
 * are C99's (glibc), which PyTorch's std::complex calls also reach.
 * ====================================================================== */

typedef struct cg_c64 {
    float re, im;
} cg_c64;
typedef struct cg_c128 {
    double re, im;
} cg_c128;

#define CG_FOR_REAL_DTYPES(X) X(f32, float, float) X(f64, double, double)
#define CG_FOR_COMPLEX_DTYPES(X) X(c64, cg_c64, float) X(c128, cg_c128, double)
#define CG_FOR_ALL_DTYPES(X) CG_FOR_REAL_DTYPES(X) CG_FOR_COMPLEX_DTYPES(X)

/* The table {f32, f64, c64, c128} of a kernel family NAME_<S>. */
#define CG_KERNELS_ALL(NAME)                                                   \
    {                                                                          \
        NAME##_f32, NAME##_f64, NAME##_c64, NAME##_c128                        \
    }
#define CG_KERNELS_REAL(NAME)                                                  \
    {                                                                          \
        NAME##_f32, NAME##_f64, NULL, NULL                                     \
    }

/* pow's fast cases, as PyTorch's pow_tensor_scalar kernel picks them. */
enum {
    CG_POW_ONE,          /* p == 0: ones */
    CG_POW_COPY,         /* p == 1 */
    CG_POW_SQRT,         /* 0.5 */
    CG_POW_RSQRT,        /* -0.5 */
    CG_POW_RECIP,        /* -1 */
    CG_POW_SQUARE,       /* 2 */
    CG_POW_CUBE,         /* 3 */
    CG_POW_RECIP_SQUARE, /* -2 */
    CG_POW_GENERAL
};
static inline int cg__pow_mode(double p)
{
    return p == 0.0    ? CG_POW_ONE
           : p == 1.0  ? CG_POW_COPY
           : p == 0.5  ? CG_POW_SQRT
           : p == -0.5 ? CG_POW_RSQRT
           : p == -1.0 ? CG_POW_RECIP
           : p == 2.0  ? CG_POW_SQUARE
           : p == 3.0  ? CG_POW_CUBE
           : p == -2.0 ? CG_POW_RECIP_SQUARE
                       : CG_POW_GENERAL;
}

/* a ** p by mode, written once over a dtype's helpers. */
#define CG__POW_BODY(S, a, p, mode)                                            \
    switch (mode) {                                                            \
    case CG_POW_ONE:                                                           \
        return cg__##S##_of(1.0, 0.0);                                         \
    case CG_POW_COPY:                                                          \
        return a;                                                              \
    case CG_POW_SQRT:                                                          \
        return cg__##S##_sqrt(a);                                              \
    case CG_POW_RSQRT:                                                         \
        return cg__##S##_div(cg__##S##_of(1.0, 0.0), cg__##S##_sqrt(a));       \
    case CG_POW_RECIP:                                                         \
        return cg__##S##_div(cg__##S##_of(1.0, 0.0), a);                       \
    case CG_POW_SQUARE:                                                        \
        return cg__##S##_mul(a, a);                                            \
    case CG_POW_CUBE:                                                          \
        return cg__##S##_mul(cg__##S##_mul(a, a), a);                          \
    case CG_POW_RECIP_SQUARE:                                                  \
        return cg__##S##_div(cg__##S##_of(1.0, 0.0), cg__##S##_mul(a, a));     \
    default:                                                                   \
        return cg__##S##_powg(a, p);                                           \
    }

/* Real helpers; F is libm's suffix ("f" or nothing). */
#define CG__REAL_MATH(S, T, F)                                                 \
    static inline T cg__##S##_of(double re, double im)                         \
    {                                                                          \
        (void)im;                                                              \
        return (T)re;                                                          \
    }                                                                          \
    static inline T cg__##S##_add(T a, T b)                                    \
    {                                                                          \
        return a + b;                                                          \
    }                                                                          \
    static inline T cg__##S##_sub(T a, T b)                                    \
    {                                                                          \
        return a - b;                                                          \
    }                                                                          \
    static inline T cg__##S##_mul(T a, T b)                                    \
    {                                                                          \
        return a * b;                                                          \
    }                                                                          \
    static inline T cg__##S##_div(T a, T b)                                    \
    {                                                                          \
        return a / b;                                                          \
    }                                                                          \
    static inline T cg__##S##_neg(T a)                                         \
    {                                                                          \
        return -a;                                                             \
    }                                                                          \
    static inline T cg__##S##_conj(T a)                                        \
    {                                                                          \
        return a;                                                              \
    }                                                                          \
    static inline T cg__##S##_abs(T a)                                         \
    {                                                                          \
        return fabs##F(a);                                                     \
    }                                                                          \
    static inline T cg__##S##_sgn(T a)                                         \
    {                                                                          \
        return (T)((a > 0) - (a < 0));                                         \
    }                                                                          \
    static inline T cg__##S##_exp(T a)                                         \
    {                                                                          \
        return exp##F(a);                                                      \
    }                                                                          \
    static inline T cg__##S##_log(T a)                                         \
    {                                                                          \
        return log##F(a);                                                      \
    }                                                                          \
    static inline T cg__##S##_sqrt(T a)                                        \
    {                                                                          \
        return sqrt##F(a);                                                     \
    }                                                                          \
    static inline T cg__##S##_tanh(T a)                                        \
    {                                                                          \
        return tanh##F(a);                                                     \
    }                                                                          \
    /* std::pow(float, double) computes in double */                           \
    static inline T cg__##S##_powg(T a, double p)                              \
    {                                                                          \
        return (T)pow((double)a, p);                                           \
    }                                                                          \
    static inline T cg__##S##_ipow(T a, double p, int mode)                    \
    {                                                                          \
        CG__POW_BODY(S, a, p, mode)                                            \
    }

/* Complex helpers. Arithmetic is inline; abs and the transcendental
 * functions (C99's cabs, cexp, clog, csqrt, ctanh, cpow) are defined in
 * broadcast.c, which keeps <complex.h> (and its `complex` and `I` macros)
 * out of every file including this header. F is libm's suffix. */
#define CG__COMPLEX_DECLS(S, T, R)                                             \
    R cg__##S##_abs(T a);                                                      \
    T cg__##S##_exp(T a);                                                      \
    T cg__##S##_log(T a);                                                      \
    T cg__##S##_sqrt(T a);                                                     \
    T cg__##S##_tanh(T a);                                                     \
    T cg__##S##_powg(T a, double p);
CG_FOR_COMPLEX_DTYPES(CG__COMPLEX_DECLS)

#define CG__COMPLEX_MATH(S, T, R, F)                                           \
    static inline T cg__##S##_of(double re, double im)                         \
    {                                                                          \
        T z = {(R)re, (R)im};                                                  \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_add(T a, T b)                                    \
    {                                                                          \
        T z = {a.re + b.re, a.im + b.im};                                      \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_sub(T a, T b)                                    \
    {                                                                          \
        T z = {a.re - b.re, a.im - b.im};                                      \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_mul(T a, T b)                                    \
    {                                                                          \
        T z = {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};          \
        return z;                                                              \
    }                                                                          \
    /* Smith's algorithm: scale by the larger part of b, no overflow of        \
     * |b|^2 */                                                                \
    static inline T cg__##S##_div(T a, T b)                                    \
    {                                                                          \
        R ac = fabs##F(b.re), ad = fabs##F(b.im);                              \
        T z;                                                                   \
        if (ac >= ad) {                                                        \
            if (ac == 0 && ad == 0) {                                          \
                z.re = a.re / ac;                                              \
                z.im = a.im / ad;                                              \
            } else {                                                           \
                R rat = b.im / b.re, scl = (R)1 / (b.re + b.im * rat);         \
                z.re = (a.re + a.im * rat) * scl;                              \
                z.im = (a.im - a.re * rat) * scl;                              \
            }                                                                  \
        } else {                                                               \
            R rat = b.re / b.im, scl = (R)1 / (b.im + b.re * rat);             \
            z.re = (a.re * rat + a.im) * scl;                                  \
            z.im = (a.im * rat - a.re) * scl;                                  \
        }                                                                      \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_neg(T a)                                         \
    {                                                                          \
        T z = {-a.re, -a.im};                                                  \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_conj(T a)                                        \
    {                                                                          \
        T z = {a.re, -a.im};                                                   \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_sgn(T a)                                         \
    {                                                                          \
        if (a.re == 0 && a.im == 0)                                            \
            return cg__##S##_of(0.0, 0.0);                                     \
        R m = cg__##S##_abs(a);                                                \
        T z = {a.re / m, a.im / m};                                            \
        return z;                                                              \
    }                                                                          \
    static inline T cg__##S##_ipow(T a, double p, int mode)                    \
    {                                                                          \
        CG__POW_BODY(S, a, p, mode)                                            \
    }

CG__REAL_MATH(f32, float, f)
CG__REAL_MATH(f64, double, )
CG__COMPLEX_MATH(c64, cg_c64, float, f)
CG__COMPLEX_MATH(c128, cg_c128, double, )

/* ---- kernel templates ------------------------------------------------------
 * Each defines `static void NAME_<S>(data, strides, n, params)`. In EXPR the
 * operands are x (unary) or a, b (binary) or a, b, c (ternary), all of type
 * T; `s` is params->re/im as a T; `p` is the params pointer. The first
 * loop is the contiguous fast path (plain indexing, which compilers
 * vectorise), the second the strided reference path. */

#define CG_UNARY_KERNEL(NAME, S, T, TO, EXPR)                                  \
    static void NAME##_##S(char *const *d_, const int64_t *st_, int64_t n_,    \
                           const cg_kparams *p)                                \
    {                                                                          \
        const T s = cg__##S##_of(p ? p->re : 0.0, p ? p->im : 0.0);            \
        (void)s;                                                               \
        if (st_[0] == (int64_t)sizeof(TO) && st_[1] == (int64_t)sizeof(T)) {   \
            TO *o_ = (TO *)d_[0];                                              \
            const T *x_ = (const T *)d_[1];                                    \
            for (int64_t i_ = 0; i_ < n_; i_++) {                              \
                const T x = x_[i_];                                            \
                o_[i_] = (EXPR);                                               \
            }                                                                  \
        } else {                                                               \
            char *o_ = d_[0];                                                  \
            const char *x_ = d_[1];                                            \
            for (int64_t i_ = 0; i_ < n_; i_++, o_ += st_[0], x_ += st_[1]) {  \
                const T x = *(const T *)x_;                                    \
                *(TO *)o_ = (EXPR);                                            \
            }                                                                  \
        }                                                                      \
    }

#define CG_BINARY_KERNEL(NAME, S, T, EXPR)                                     \
    static void NAME##_##S(char *const *d_, const int64_t *st_, int64_t n_,    \
                           const cg_kparams *p)                                \
    {                                                                          \
        (void)p;                                                               \
        const int64_t z_ = (int64_t)sizeof(T);                                 \
        if (st_[0] == z_ && st_[1] == z_ && st_[2] == z_) {                    \
            T *o_ = (T *)d_[0];                                                \
            const T *a_ = (const T *)d_[1], *b_ = (const T *)d_[2];            \
            for (int64_t i_ = 0; i_ < n_; i_++) {                              \
                const T a = a_[i_], b = b_[i_];                                \
                o_[i_] = (EXPR);                                               \
            }                                                                  \
        } else {                                                               \
            char *o_ = d_[0];                                                  \
            const char *a_ = d_[1], *b_ = d_[2];                               \
            for (int64_t i_ = 0; i_ < n_;                                      \
                 i_++, o_ += st_[0], a_ += st_[1], b_ += st_[2]) {             \
                const T a = *(const T *)a_, b = *(const T *)b_;                \
                *(T *)o_ = (EXPR);                                             \
            }                                                                  \
        }                                                                      \
    }

#define CG_TERNARY_KERNEL(NAME, S, T, EXPR)                                    \
    static void NAME##_##S(char *const *d_, const int64_t *st_, int64_t n_,    \
                           const cg_kparams *p)                                \
    {                                                                          \
        (void)p;                                                               \
        char *o_ = d_[0];                                                      \
        const char *a_ = d_[1], *b_ = d_[2], *c_ = d_[3];                      \
        for (int64_t i_ = 0; i_ < n_;                                          \
             i_++, o_ += st_[0], a_ += st_[1], b_ += st_[2], c_ += st_[3]) {   \
            const T a = *(const T *)a_, b = *(const T *)b_,                    \
                    c = *(const T *)c_;                                        \
            *(T *)o_ = (EXPR);                                                 \
        }                                                                      \
    }

#endif /* CGRAD_OPS_INTERNAL_H */
