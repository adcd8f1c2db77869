/*
 * clip_grad.c -- torch.nn.utils.clip_grad_norm_ (PyTorch 1.13,
 * torch/nn/utils/clip_grad.py):
 *
 *   grads = [p.grad for p in parameters if p.grad is not None]
 *   inf:   total = max(g.abs().max() for g in grads)
 *   else:  total = norm(stack([norm(g, p) for g in grads]), p)
 *   clip_coef = max_norm / (total + 1e-6)      (tensor ops in total's dtype;
 *                                               float / tensor is
 *                                               tensor.reciprocal() * float)
 *   g.mul_(clamp(clip_coef, max=1.0)) for every grad
 *
 * The norms are reduced in PyTorch's order, so the total is PyTorch's to
 * the bit (checked against 1.13 with one thread; PyTorch splits a reduction
 * of more than 32768 elements across its threads, changing its own result):
 *   - float32 2-norm of a dense tensor, in memory order: PyTorch's
 *     vectorised kernel, 8 lanes of acc = fma(x, x, acc) over the first
 *     n - n%8 elements, the lanes added left to right, then the n%8 tail
 *     (GCC vectorised the tail's first 4 squares: acc + x*x with the square
 *     rounded; the rest fused), then sqrtf.
 *   - other dtypes and norms: one accumulator, element by element
 *     (2: fma(x, x, acc); 1: acc + |x|; 0: acc + (x != 0); inf: max |x|;
 *     -inf: min |x|; p: acc + |x|**p, then acc**(1/p)), as PyTorch's
 *     binary_kernel_reduce.
 * Complex gradients use |z| per element (PyTorch's complex kernels are not
 * reproduced bit for bit).
 */
#include "optim_internal.h"

#include <math.h>
#include <string.h>

/* ---- reductions, one template per real dtype ------------------------- */

/* Visits a tensor's elements in memory order when it is dense (its
 * dimensions sorted by stride make it contiguous), else in logical order;
 * `pos` gets each element's offset from cg_tensor_data. */
typedef struct mem_walk {
    cg__walk w;
} mem_walk;

static void mem_walk_init(mem_walk *m, const cg_tensor *t)
{
    cg__walk_init(&m->w, t);
    if (m->w.contiguous)
        return;
    /* sort dimensions by decreasing stride (stable), as TensorIterator
     * reorders a reduction's input */
    int nd = m->w.ndim;
    for (int i = 1; i < nd; i++)
        for (int j = i; j > 0 && m->w.strides[j] > m->w.strides[j - 1]; j--) {
            int64_t s = m->w.strides[j], z = m->w.shape[j];
            m->w.strides[j] = m->w.strides[j - 1];
            m->w.shape[j] = m->w.shape[j - 1];
            m->w.strides[j - 1] = s;
            m->w.shape[j - 1] = z;
        }
}

/* The float32 2-norm's lanes over `body` (a multiple of 8) contiguous
 * values: lane l takes values 8j + l, acc = fma(x, x, acc), in order --
 * PyTorch's vectorised kernel. Compiled twice, like the optimizers'
 * updates (optim_internal.h): where the CPU has FMA the loop is one vector
 * multiply-add per 8 values instead of 8 fmaf calls; the same bits. */
#define LANES8_BODY(name, attr)                                                \
    attr static void name(const float *d, int64_t body, float lane[8])         \
    {                                                                          \
        float l0 = lane[0], l1 = lane[1], l2 = lane[2], l3 = lane[3],          \
              l4 = lane[4], l5 = lane[5], l6 = lane[6], l7 = lane[7];          \
        for (int64_t i = 0; i < body; i += 8) {                                \
            l0 = fmaf(d[i], d[i], l0);                                         \
            l1 = fmaf(d[i + 1], d[i + 1], l1);                                 \
            l2 = fmaf(d[i + 2], d[i + 2], l2);                                 \
            l3 = fmaf(d[i + 3], d[i + 3], l3);                                 \
            l4 = fmaf(d[i + 4], d[i + 4], l4);                                 \
            l5 = fmaf(d[i + 5], d[i + 5], l5);                                 \
            l6 = fmaf(d[i + 6], d[i + 6], l6);                                 \
            l7 = fmaf(d[i + 7], d[i + 7], l7);                                 \
        }                                                                      \
        lane[0] = l0;                                                          \
        lane[1] = l1;                                                          \
        lane[2] = l2;                                                          \
        lane[3] = l3;                                                          \
        lane[4] = l4;                                                          \
        lane[5] = l5;                                                          \
        lane[6] = l6;                                                          \
        lane[7] = l7;                                                          \
    }
LANES8_BODY(lanes8_plain, )
CG__FMA_VARIANT(LANES8_BODY(lanes8_fma, __attribute__((target("avx2,fma")))))

typedef void (*lanes8_fn)(const float *, int64_t, float *);
static const lanes8_fn lanes8_fast = CG__FMA_BODY(lanes8_fma);

static void lanes8(const float *d, int64_t body, float lane[8])
{
    lanes8_fn fn = lanes8_plain;
    if (lanes8_fast && cg__use_fma())
        fn = lanes8_fast;
    fn(d, body, lane);
}

#define DEFINE_NORM(T, SFX, FMA, SQRT, FABS, POW)                              \
    /* |x| of element i (complex: |re + im j|) */                              \
    static inline T abs_##SFX(const T *d, int64_t off, int nc)                 \
    {                                                                          \
        return nc == 2 ? (T)hypot(d[2 * off], d[2 * off + 1]) : FABS(d[off]);  \
    }                                                                          \
                                                                               \
    /* PyTorch's float32 2-norm kernel (see the file comment); for float64     \
     * the sequential one. `v` is read through a walk. */                      \
    static T norm2_##SFX(const T *d, const cg_tensor *t, int nc, bool lanes)   \
    {                                                                          \
        mem_walk m;                                                            \
        mem_walk_init(&m, t);                                                  \
        int64_t n = cg_tensor_numel(t);                                        \
        if (!lanes) {                                                          \
            T acc = 0;                                                         \
            for (int64_t i = 0; i < n; i++, cg__walk_next(&m.w)) {             \
                T x = abs_##SFX(d, m.w.off, nc);                               \
                acc = nc == 2 ? acc + x * x : FMA(x, x, acc);                  \
            }                                                                  \
            return SQRT(acc);                                                  \
        }                                                                      \
        T lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                  \
        int64_t body = n - n % 8, i = 0;                                       \
        if (m.w.contiguous && sizeof(T) == sizeof(float)) {                    \
            lanes8((const float *)d, body, (float *)lane);                     \
            i = body;                                                          \
            m.w.off = body;                                                    \
        }                                                                      \
        for (; i < body; i++, cg__walk_next(&m.w)) {                           \
            T x = d[m.w.off];                                                  \
            lane[i % 8] = FMA(x, x, lane[i % 8]);                              \
        }                                                                      \
        T acc = lane[0];                                                       \
        for (int j = 1; j < 8; j++)                                            \
            acc = acc + lane[j];                                               \
        for (int64_t k = 0; i < n; i++, k++, cg__walk_next(&m.w)) {            \
            T x = d[m.w.off];                                                  \
            if (n % 8 >= 4 && k < 4) {                                         \
                T sq = x * x;                                                  \
                acc = acc + sq;                                                \
            } else {                                                           \
                acc = FMA(x, x, acc);                                          \
            }                                                                  \
        }                                                                      \
        return SQRT(acc);                                                      \
    }                                                                          \
                                                                               \
    /* torch.norm(t, p) for p != 2, and g.abs().max() for inf */               \
    static T normp_##SFX(const T *d, const cg_tensor *t, int nc, double p)     \
    {                                                                          \
        mem_walk m;                                                            \
        mem_walk_init(&m, t);                                                  \
        int64_t n = cg_tensor_numel(t);                                        \
        T acc = isinf(p) && p < 0 ? (T)INFINITY : (T)0;                        \
        const T pt = (T)p;                                                     \
        for (int64_t i = 0; i < n; i++, cg__walk_next(&m.w)) {                 \
            T x = abs_##SFX(d, m.w.off, nc);                                   \
            if (p == 0)                                                        \
                acc = acc + (x == 0 ? (T)0 : (T)1);                            \
            else if (p == 1)                                                   \
                acc = acc + x;                                                 \
            else if (isinf(p) && p > 0)                                        \
                acc = (isnan(acc) || acc > x) ? acc : x;                       \
            else if (isinf(p))                                                 \
                acc = (isnan(acc) || acc < x) ? acc : x;                       \
            else                                                               \
                acc = acc + POW(x, pt);                                        \
        }                                                                      \
        if (p == 0 || p == 1 || isinf(p))                                      \
            return acc;                                                        \
        return POW(acc, (T)1 / pt);                                            \
    }

DEFINE_NORM(float, f32, fmaf, sqrtf, fabsf, powf)
DEFINE_NORM(double, f64, fma, sqrt, fabs, pow)

/* The norm of one gradient in its real dtype, as a double. */
static double grad_norm(const cg_tensor *g, double p)
{
    cg_dtype dt = cg_tensor_dtype(g);
    int nc = cg__ncomp(dt);
    const void *d = cg_tensor_data(g);
    if (cg_dtype_to_real(dt) == CG_FLOAT32)
        return p == 2 ? norm2_f32(d, g, nc, nc == 1) : normp_f32(d, g, nc, p);
    return p == 2 ? norm2_f64(d, g, nc, false) : normp_f64(d, g, nc, p);
}

/* ---- scaling the gradients in place ----------------------------------- */

#define DEFINE_SCALE(T, SFX)                                                   \
    static void scale_##SFX(cg_tensor *g, T c)                                 \
    {                                                                          \
        T *d = cg_tensor_data(g);                                              \
        int nc = cg__ncomp(cg_tensor_dtype(g));                                \
        cg__walk w;                                                            \
        cg__walk_init(&w, g);                                                  \
        int64_t n = cg_tensor_numel(g);                                        \
        if (w.contiguous) { /* one run: a loop the compiler vectorises */      \
            for (int64_t i = 0; i < n * nc; i++)                               \
                d[i] = d[i] * c;                                               \
            return;                                                            \
        }                                                                      \
        for (int64_t i = 0; i < n; i++, cg__walk_next(&w))                     \
            for (int k = 0; k < nc; k++)                                       \
                d[w.off * nc + k] = d[w.off * nc + k] * c;                     \
    }

DEFINE_SCALE(float, f32)
DEFINE_SCALE(double, f64)

cg_status cg_clip_grad_norm_(cg_tensor *const *params, int num_params,
                             double max_norm, double norm_type,
                             bool error_if_nonfinite, double *total_norm)
{
    if (num_params < 0)
        return cg__optim_error(CG_ERR_VALUE, "num_params must be >= 0");
    if (num_params > 0 && !params)
        return cg__optim_null("params");
    int ngrads = 0;
    bool wide = false; /* a float64/complex128 grad: the stack is float64 */
    for (int i = 0; i < num_params; i++) {
        if (!params[i])
            return cg__optim_null("parameter");
        cg_tensor *g = cg_tensor_grad(params[i]);
        if (!g)
            continue;
        cg_status st = cg__check_no_overlap(g);
        if (st != CG_OK)
            return st;
        if (isinf(norm_type) && norm_type > 0 && cg_tensor_numel(g) == 0)
            return cg__optim_error(
                CG_ERR_RUNTIME,
                "max(): Expected reduction dim to be specified for "
                "input.numel() == 0. Specify the reduction dim with the "
                "'dim' argument.");
        wide |= cg_dtype_to_real(cg_tensor_dtype(g)) == CG_FLOAT64;
        ngrads++;
    }
    if (ngrads == 0) {
        if (total_norm)
            *total_norm = 0.0; /* torch.tensor(0.) */
        return CG_OK;
    }
    size_t bytes = (size_t)ngrads * sizeof(double);
    double *norms = cg_malloc(bytes);
    if (!norms)
        return cg__optim_nomem(bytes);
    int k = 0;
    for (int i = 0; i < num_params; i++) {
        cg_tensor *g = cg_tensor_grad(params[i]);
        if (g)
            norms[k++] = grad_norm(g, norm_type);
    }
    /* The norm of the stacked norms: a contiguous 1-D tensor of the
     * promoted dtype, reduced the same way. */
    double total;
    cg_tensor *stack = NULL;
    int64_t shape[1] = {ngrads};
    cg_status st;
    if (wide) {
        st = cg_tensor_from_data(norms, shape, 1, CG_FLOAT64, &stack);
    } else {
        for (int i = 0; i < ngrads; i++) {
            float f = (float)norms[i];
            memcpy((char *)norms + (size_t)i * sizeof(float), &f, sizeof f);
        }
        st = cg_tensor_from_data(norms, shape, 1, CG_FLOAT32, &stack);
    }
    cg_free(norms);
    if (st != CG_OK)
        return st;
    if (isinf(norm_type) && norm_type > 0 && ngrads == 1)
        total = grad_norm(stack, INFINITY); /* norms[0] itself */
    else
        total = grad_norm(stack, norm_type);
    cg_tensor_release(stack);

    if (error_if_nonfinite && !isfinite(total)) {
        char p[40];
        return cg__optim_error(
            CG_ERR_RUNTIME,
            "The total norm of order %s for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and "
            "scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`",
            cg__pyfloat(norm_type, p, sizeof p));
    }
    /* clip_coef = (total + 1e-6).reciprocal() * max_norm, clamped to 1.0,
     * in the total's dtype */
    double coef;
    if (wide) {
        double t = total + 1e-6;
        double c = (1.0 / t) * max_norm;
        coef = isnan(c) ? c : (c > 1.0 ? 1.0 : c);
    } else {
        float t = (float)total + (float)1e-6;
        float c = (1.0f / t) * (float)max_norm;
        coef = isnan(c) ? c : (c > 1.0f ? 1.0f : c);
    }
    bool prev = cg_set_grad_enabled(false);
    for (int i = 0; i < num_params && st == CG_OK; i++) {
        cg_tensor *g = cg_tensor_grad(params[i]);
        if (!g)
            continue;
        if (cg_dtype_to_real(cg_tensor_dtype(g)) == CG_FLOAT32)
            scale_f32(g, (float)coef);
        else
            scale_f64(g, coef);
        st = cg__bump_version(g);
    }
    cg_set_grad_enabled(prev);
    if (st == CG_OK && total_norm)
        *total_norm = total;
    return st;
}
