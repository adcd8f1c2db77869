/*
 * conv_transpose3d_fast.h -- the fast ConvTranspose3d kernels (forward,
 * backward-data, backward-weights and bias) that core/convolution.c runs
 * in place of the reference kernels of conv_internal.h. Never installed.
 *
 * Same contracts as the cg__ct3d_ref_* functions (geometry, layouts,
 * "writes its whole output"), float32 and float64, any geometry the
 * reference accepts. Differences: they run on the thread pool, and they
 * use the instruction set cg__simd_level() names (CGRAD_SIMD=off forces
 * the portable C kernels). For a given instruction set the results are
 * bitwise identical whatever the thread count: every output element is
 * computed by one thread, in an order fixed by the problem size alone.
 * The forward rounds in PyTorch 1.13's order, as the reference does, so
 * its results are the reference's bits on every instruction set; the
 * backward passes sum in their own orders (fused multiply-adds, lane-wise
 * partial sums), within CONV_TRANSPOSE3D.md 2.4.
 * Errors: CG_ERR_NOMEM for scratch memory, CG_ERR_RUNTIME for another
 * dtype; nothing is written then.
 */
#ifndef CGRAD_CONV_TRANSPOSE3D_FAST_H
#define CGRAD_CONV_TRANSPOSE3D_FAST_H

#include "conv_internal.h"

/** y = conv_transpose3d(x, w) + b (b may be NULL). */
cg_status cg__ct3d_fast_forward(const cg_conv_geom *g, cg_dtype dt,
                                const void *x, const void *w, const void *b,
                                void *y);

/** gx = conv3d(gy, w, ...) cropped to x's size (see
 *  cg__ct3d_ref_backward_input). */
cg_status cg__ct3d_fast_backward_input(const cg_conv_geom *g, cg_dtype dt,
                                       const void *gy, const void *w, void *gx);

/** gw[ci, co', t] = sum over n, i of x[n, ci, i] * gy[n, g*Cog + co', o]. */
cg_status cg__ct3d_fast_backward_weight(const cg_conv_geom *g, cg_dtype dt,
                                        const void *x, const void *gy,
                                        void *gw);

/** gb[c] = sum over n and out positions of gy[n, c, .]. */
cg_status cg__ct3d_fast_backward_bias(const cg_conv_geom *g, cg_dtype dt,
                                      const void *gy, void *gb);

/** All the gradients one backward needs, sharing the rearranged copy of gy
 *  that backward-data and backward-weights both read: gx (needs w), gw
 *  (needs x) and gb, each NULL when not wanted. */
cg_status cg__ct3d_fast_backward(const cg_conv_geom *g, cg_dtype dt,
                                 const void *x, const void *w, const void *gy,
                                 void *gx, void *gw, void *gb);

/** cg__ct3d_fast_backward with gy's (OD, OH, OW) planes placed anywhere:
 *  plane (n, c) starts at element n*gy_planes[0] + c*gy_planes[1] of gy. A
 *  stride of 0 serves a gradient expanded along N or C -- y.sum()'s is one
 *  plane for all -- without writing it out. gy_plane NULL: each plane is
 *  contiguous; else gy_planes must be {0, 0} and gy_plane holds the one
 *  plane's D, H, W strides in elements (any, 0 included): each thread
 *  then works from a contiguous copy of its own, so a plane of up to
 *  CG__CT3D_PRIVATE_PLANE_BYTES is better passed this way than copied
 *  once by the caller. */
cg_status cg__ct3d_fast_backward_planes(const cg_conv_geom *g, cg_dtype dt,
                                        const void *x, const void *w,
                                        const void *gy,
                                        const int64_t gy_planes[2],
                                        const int64_t *gy_plane, void *gx,
                                        void *gw, void *gb);

/** The largest strided gy plane worth a copy per thread (L2-sized). */
#define CG__CT3D_PRIVATE_PLANE_BYTES ((size_t)256 * 1024)

#endif /* CGRAD_CONV_TRANSPOSE3D_FAST_H */
