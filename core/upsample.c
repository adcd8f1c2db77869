/*
 * upsample.c -- nearest-neighbour upsampling, torch._C._nn.upsample_nearest
 * {1,2,3}d (what F.interpolate(mode='nearest') and nn.Upsample call),
 * PyTorch 1.13 CPU, real dtypes, forward beside backward.
 *
 * x (N, C, *in) with k = 1, 2 or 3 spatial axes; y (N, C, *out). out comes
 * from output_size, or from scale_factors as int64(double(in) * scale)
 * (C++'s truncating conversion, as compute_output_size does). Each output
 * index o of an axis reads input index
 *   o                       when out == in,
 *   o >> 1                  when out == 2 * in,
 *   min(floorf(o * r), in - 1) otherwise, in float, with
 *   r = (float)(1.0 / scale) when a scale factor was given and is > 0,
 *       else (float)in / (float)out
 * (PyTorch's nearest_idx and compute_scales_value<float>; the float
 * arithmetic is what makes 10 -> 17 with scale 1.7 pick the indices it
 * does). Backward: gx[src(o)] += gy[o], outputs in row-major order per
 * plane, in the dtype, as PyTorch's kernel accumulates.
 *
 * grad_fn: UpsampleNearest{1,2,3}DBackward1 (the overload taking
 * output_size and scale_factors); it saves no tensor. Planes (n, c) are
 * independent and the pool computes whole planes, so the thread count
 * cannot change a bit.
 *
 * Left out: the other interpolation modes, channels-last layouts.
 */
#include "autograd_internal.h"
#include "plane_internal.h"

#include <math.h>
#include <string.h>

enum { PLANE_BLOCK_ELEMS = 1 << 15 }; /* output elements per pool chunk */

/* The geometry, padded to three axes (a missing axis has in = out = 1). */
typedef struct up_geom {
    int k; /* spatial axes of the input, 1..3 */
    int ndim;
    int64_t in_shape[5];
    int64_t planes;
    int64_t in[3], out[3];
    bool has_scale[3];
    double scale[3];
    int64_t in_plane, out_plane; /* elements of a plane of x, of y */
    int64_t per_block;           /* planes per pool chunk */
} up_geom;

/* nearest_idx (UpSample.h). */
static int64_t nearest_idx(int64_t o, int64_t in, int64_t out, bool has_scale,
                           double scale)
{
    if (out == in)
        return o;
    if (out == 2 * in)
        return o >> 1;
    float r =
        has_scale && scale > 0 ? (float)(1.0 / scale) : (float)in / (float)out;
    int64_t src = (int64_t)floorf((float)o * r);
    return src < in - 1 ? src : in - 1;
}

/* The source index of every output index of the three axes, into one
 * array (out[0] + out[1] + out[2] entries, cg__malloc'd). */
static cg_status index_tables(const up_geom *g, int64_t **out)
{
    int64_t n = g->out[0] + g->out[1] + g->out[2];
    int64_t *t = cg__malloc((size_t)n * sizeof *t);
    if (!t)
        return cg__error_nomem((size_t)n * sizeof *t);
    int64_t *p = t;
    for (int a = 0; a < 3; a++)
        for (int64_t o = 0; o < g->out[a]; o++)
            *p++ = nearest_idx(o, g->in[a], g->out[a], g->has_scale[a],
                               g->scale[a]);
    *out = t;
    return CG_OK;
}

typedef struct up_job {
    const up_geom *g;
    const int64_t *src_t, *src_h, *src_w; /* index tables per axis */
    bool w2;         /* along W, output w reads input w / 2 (out = 2 in) */
    const void *src; /* forward: x; backward: gy */
    void *dst;       /* forward: y; backward: gx (zeroed) */
} up_job;

/* One plane of each pass; CG__PLANE_KERNEL makes the chunk functions
 * (up_fwd_f32, ...) from them. */
#define DEFINE_UPSAMPLE(S, T)                                                  \
    static void up_fwd_plane_##S(const up_job *j, int64_t pl, const T *x,      \
                                 T *y)                                         \
    {                                                                          \
        (void)pl;                                                              \
        const up_geom *g = j->g;                                               \
        for (int64_t t = 0; t < g->out[0]; t++)                                \
            for (int64_t h = 0; h < g->out[1]; h++) {                          \
                const T *row =                                                 \
                    x + (j->src_t[t] * g->in[1] + j->src_h[h]) * g->in[2];     \
                if (j->w2) {                                                   \
                    for (int64_t w = 0; w < g->in[2]; w++, y += 2)             \
                        y[0] = y[1] = row[w];                                  \
                    continue;                                                  \
                }                                                              \
                for (int64_t w = 0; w < g->out[2]; w++)                        \
                    *y++ = row[j->src_w[w]];                                   \
            }                                                                  \
    }                                                                          \
    static void up_bwd_plane_##S(const up_job *j, int64_t pl, const T *gy,     \
                                 T *gx)                                        \
    {                                                                          \
        (void)pl;                                                              \
        const up_geom *g = j->g;                                               \
        for (int64_t t = 0; t < g->out[0]; t++)                                \
            for (int64_t h = 0; h < g->out[1]; h++) {                          \
                T *row =                                                       \
                    gx + (j->src_t[t] * g->in[1] + j->src_h[h]) * g->in[2];    \
                if (j->w2) { /* the same additions, in the same order */       \
                    for (int64_t w = 0; w < g->in[2]; w++, gy += 2)            \
                        row[w] = (row[w] + gy[0]) + gy[1];                     \
                    continue;                                                  \
                }                                                              \
                for (int64_t w = 0; w < g->out[2]; w++)                        \
                    row[j->src_w[w]] += *gy++;                                 \
            }                                                                  \
    }                                                                          \
    CG__PLANE_KERNEL(up_fwd_##S, up_job, T, in_plane, out_plane,               \
                     up_fwd_plane_##S)                                         \
    CG__PLANE_KERNEL(up_bwd_##S, up_job, T, out_plane, in_plane,               \
                     up_bwd_plane_##S)

DEFINE_UPSAMPLE(f32, float)
DEFINE_UPSAMPLE(f64, double)
#undef DEFINE_UPSAMPLE

/* Runs a pass (forward or backward) over all planes. */
static cg_status run(const up_geom *g, const void *src, void *dst, cg_dtype dt,
                     bool backward)
{
    if (g->planes == 0)
        return CG_OK; /* no index tables needed */
    int64_t *tables = NULL;
    cg_status st = index_tables(g, &tables);
    if (st != CG_OK)
        return st;
    up_job j = {.g = g,
                .src_t = tables,
                .src_h = tables + g->out[0],
                .src_w = tables + g->out[0] + g->out[1],
                .w2 = g->out[2] == 2 * g->in[2],
                .src = src,
                .dst = dst};
    for (int64_t w = 0; w < g->out[2] && j.w2; w++)
        j.w2 = j.src_w[w] == w / 2;
    cg_parallel_fn fn = backward ? (dt == CG_FLOAT64 ? up_bwd_f64 : up_bwd_f32)
                                 : (dt == CG_FLOAT64 ? up_fwd_f64 : up_fwd_f32);
    cg__plane_for(g->planes, g->per_block, fn, &j);
    cg__free(tables);
    return CG_OK;
}

/* t as a contiguous tensor without autograd. */
static cg_status dense(cg_tensor *t, cg_tensor **out)
{
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_tensor_contiguous(t, out);
    cg_set_grad_enabled(prev);
    return st;
}

static cg_status up_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const up_geom *g = node->ctx;
    if (!cg__needs_grad(node, 0))
        return CG_OK;
    cg_tensor *gyc = NULL, *r = NULL;
    cg_status st = dense(gy, &gyc);
    if (st != CG_OK)
        return st;
    if ((st = cg__tensor_new(g->in_shape, g->ndim, gy->dtype, &r)) == CG_OK)
        st = run(g, cg_tensor_data(gyc), cg_tensor_data(r), gy->dtype, true);
    cg_tensor_release(gyc);
    if (st != CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    gx[0] = r;
    return CG_OK;
}

static const cg_op_def up_ops[3] = {
    {"UpsampleNearest1DBackward1", up_backward, NULL},
    {"UpsampleNearest2DBackward1", up_backward, NULL},
    {"UpsampleNearest3DBackward1", up_backward, NULL},
};

/* upsample_{1,2,3}d_common_check's size message. */
static cg_status sizes_error(const up_geom *g, const int64_t *in,
                             const int64_t *out)
{
    static const char *const axis[3] = {"D", "H", "W"};
    char a[96] = "", b[96] = "";
    size_t la = 0, lb = 0;
    for (int i = 3 - g->k; i < 3; i++) {
        const char *sep = i > 3 - g->k ? ", " : "";
        la += (size_t)snprintf(a + la, sizeof a - la, "%s%s: %lld", sep,
                               axis[i], (long long)in[i - (3 - g->k)]);
        lb += (size_t)snprintf(b + lb, sizeof b - lb, "%s%s: %lld", sep,
                               axis[i], (long long)out[i - (3 - g->k)]);
    }
    return cg__error(CG_ERR_RUNTIME,
                     "Input and output sizes should be greater than 0, but "
                     "got input (%s)%s output (%s)",
                     a, g->k == 1 ? " and" : "", b);
}

cg_status cg_upsample_nearest(cg_tensor *input, const int64_t *output_size,
                              const double *scale_factors, int n,
                              cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!out)
        return cg__error_null("out");
    int k = input->ndim - 2;
    if (k < 1 || k > 3)
        return cg__error(CG_ERR_NOT_IMPLEMENTED,
                         "Input Error: Only 3D, 4D and 5D input Tensors "
                         "supported (got %dD) for the modes: nearest | linear "
                         "| bilinear | bicubic | trilinear | area | "
                         "nearest-exact (got nearest)",
                         input->ndim);
    if ((output_size == NULL) == (scale_factors == NULL))
        return cg__error(CG_ERR_RUNTIME, "Must specify exactly one of "
                                         "output_size and scale_factors");
    if (n != k)
        return cg__error(CG_ERR_MISUSE,
                         "upsample_nearest: a %dD input needs %d output sizes "
                         "or scale factors, got %d",
                         input->ndim, k, n);
    up_geom g;
    memset(&g, 0, sizeof g);
    g.k = k;
    g.ndim = input->ndim;
    memcpy(g.in_shape, input->shape, sizeof(int64_t) * (size_t)input->ndim);
    int64_t in[3], osz[3];
    for (int i = 0; i < k; i++) {
        in[i] = input->shape[2 + i];
        if (output_size) {
            osz[i] = output_size[i];
            continue;
        }
        double v = (double)in[i] * scale_factors[i];
        if (!(v > -9.2e18 && v < 9.2e18)) /* int64(v) would be undefined */
            return cg__error(CG_ERR_RUNTIME,
                             "upsample_nearest: output size %g of axis %d is "
                             "not representable",
                             v, i);
        osz[i] = (int64_t)v;
    }
    for (int i = 0; i < k; i++)
        if (in[i] <= 0 || osz[i] <= 0)
            return sizes_error(&g, in, osz);
    if (input->shape[1] == 0) {
        char shape[CG_MAX_DIMS * 24];
        return cg__error(
            CG_ERR_RUNTIME,
            "Non-empty %dD data tensor expected but got a tensor "
            "with sizes %s",
            input->ndim,
            cg__format_shape(input->shape, input->ndim, shape, sizeof shape));
    }
    if (cg_dtype_is_complex(input->dtype))
        return cg__error(CG_ERR_RUNTIME, "\"%s\" not implemented for '%s'",
                         k == 1   ? "compute_indices_weights_nearest"
                         : k == 2 ? "upsample_nearest2d_channels_last"
                                  : "upsample_nearest3d_channels_last",
                         cg__dtype_scalar_name(input->dtype));
    for (int a = 0; a < 3; a++) {
        int i = a - (3 - k);
        g.in[a] = i >= 0 ? in[i] : 1;
        g.out[a] = i >= 0 ? osz[i] : 1;
        g.has_scale[a] = i >= 0 && scale_factors != NULL;
        g.scale[a] = g.has_scale[a] ? scale_factors[i] : 0.0;
    }
    int64_t shape[5] = {input->shape[0], input->shape[1]}, numel;
    for (int i = 0; i < k; i++)
        shape[2 + i] = osz[i];
    /* y's shape first, as tensor creation checks it (PyTorch creates y
     * here): once it passes, a plane of y is countable unless there are
     * no planes */
    cg_status st = cg__check_new_shape(shape, input->ndim, &numel);
    if (st != CG_OK)
        return st;
    g.planes = input->shape[0] * input->shape[1];
    g.in_plane = cg__plane_numel(g.in);
    g.out_plane = cg__plane_numel(g.out);
    g.per_block = cg__planes_per_block(PLANE_BLOCK_ELEMS, g.out_plane);

    cg_tensor *y = NULL, *xc = NULL;
    /* every element is written below */
    if ((st = cg__tensor_new_uninit(shape, input->ndim, input->dtype, &y)) !=
        CG_OK)
        return st;
    if ((st = dense(input, &xc)) != CG_OK ||
        (st = run(&g, cg_tensor_data(xc), cg_tensor_data(y), input->dtype,
                  false)) != CG_OK)
        goto fail;
    up_geom *c;
    if ((st = cg__record(y, &up_ops[k - 1], &input, 1, sizeof *c, NULL,
                         (void **)&c)) != CG_OK)
        goto fail;
    if (c)
        *c = g;
    cg_tensor_release(xc);
    *out = y;
    return CG_OK;
fail:
    cg_tensor_release(xc);
    cg_tensor_release(y);
    return st;
}
