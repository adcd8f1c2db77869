/*
 * denoising.c -- the data and the model of the denoising task that
 * train_upsampler.c and train_distributed.c share (see denoising.h).
 */
#include "denoising.h"

#include <math.h>
#include <string.h>

/* ======================================================================
 * The data: volumes of spheres and cubes
 * ====================================================================== */

/* A uniform double in [lo, hi) from 53 random bits. */
static double uniform(cg_generator *g, double lo, double hi)
{
    double u = (double)(cg_generator_random64(g) >> 11) * 0x1p-53;
    return lo + (hi - lo) * u;
}

/* One S^3 volume of 2 to 4 spheres and cubes (see denoising.h) into v. */
static void draw_volume(cg_generator *g, int S, float *v)
{
    memset(v, 0, (size_t)S * S * S * sizeof *v);
    int shapes = 2 + (int)(cg_generator_random(g) % 3);
    for (int k = 0; k < shapes; k++) {
        bool sphere = cg_generator_random(g) % 2 == 0;
        double c[3];
        for (int a = 0; a < 3; a++)
            c[a] = uniform(g, 0.25 * S, 0.75 * S);
        double r = uniform(g, 0.125 * S, 0.25 * S);
        float value = (float)uniform(g, 0.5, 1.0);
        for (int z = 0; z < S; z++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    double dz = z + 0.5 - c[0], dy = y + 0.5 - c[1],
                           dx = x + 0.5 - c[2];
                    bool in =
                        sphere ? dz * dz + dy * dy + dx * dx < r * r
                               : fabs(dz) < r && fabs(dy) < r && fabs(dx) < r;
                    float *p = &v[((size_t)z * S + y) * S + x];
                    if (in && value > *p)
                        *p = value;
                }
    }
}

cg_status denoising_make_data(cg_generator *g, int n, int S, double noise,
                              cg_tensor **noisy, cg_tensor **clean)
{
    cg_status st = CG_ERR_NOMEM;
    size_t vox = (size_t)S * S * S;
    float *buf = cg_malloc((size_t)n * vox * sizeof *buf);
    cg_tensor *c = NULL, *eps = NULL, *scaled = NULL;
    if (!buf)
        return cg_error(CG_ERR_NOMEM, "out of memory for %d volumes", n);
    /* all the volumes first, then all the noise: the order of the draws */
    for (int i = 0; i < n; i++)
        draw_volume(g, S, buf + i * vox);
    const int64_t shape[5] = {n, 1, S, S, S};
    if ((st = cg_tensor_from_data(buf, shape, 5, CG_FLOAT32, &c)) ||
        (st = cg_randn(shape, 5, CG_FLOAT32, g, &eps)) ||
        (st = cg_mul_scalar(eps, noise, &scaled)) ||
        (st = cg_add(c, scaled, noisy)))
        goto done;
    *clean = c;
    c = NULL;
done:
    cg_free(buf);
    cg_tensor_release(c);
    cg_tensor_release(eps);
    cg_tensor_release(scaled);
    return st;
}

/* ======================================================================
 * The model
 * ====================================================================== */

cg_status denoising_make_model(int channels, cg_module **out)
{
    cg_status st;
    cg_module *seq = NULL, *down = NULL, *relu = NULL, *up = NULL;
    /* nn.Conv3d(1, C, 3, stride=2, padding=1): S^3 -> (S/2)^3 */
    cg_conv3d_opts co = cg_conv3d_options(1, channels, CG_INT3(3));
    co.stride = CG_INT3(2);
    co.padding = CG_INT3(1);
    /* nn.ConvTranspose3d(C, 1, 4, stride=2, padding=1): (S/2)^3 -> S^3 */
    cg_conv_transpose3d_opts uo =
        cg_conv_transpose3d_options(channels, 1, CG_INT3(4));
    uo.stride = CG_INT3(2);
    uo.padding = CG_INT3(1);
    /* built in this order, so the weights are drawn in PyTorch's order */
    if ((st = cg_sequential_new(&seq)) || (st = cg_conv3d_new(&co, &down)) ||
        (st = cg_relu_new(&relu)) || (st = cg_conv_transpose3d_new(&uo, &up)) ||
        (st = cg_sequential_append(seq, down)) ||
        (st = cg_sequential_append(seq, relu)) ||
        (st = cg_sequential_append(seq, up))) {
        cg_module_free(seq);
        seq = NULL;
    }
    /* the container holds its own references */
    cg_module_free(down);
    cg_module_free(relu);
    cg_module_free(up);
    *out = seq;
    return st;
}
