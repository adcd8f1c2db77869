/*
 * dropout.c -- F.dropout(input, p, training) on the CPU, draw for draw as
 * PyTorch 1.13 (at::dropout -> _dropout_impl; the fused native_dropout is
 * for CUDA only).
 *
 *   p outside [0, 1]          ValueError (F.dropout's Python check; NaN
 *                             passes it and fails ATen's, a RuntimeError)
 *   !training, p == 0, empty  the input itself (no node)
 *   p == 1                    input * zeros(())            MulBackward0
 *   otherwise                 noise = empty_like(input).bernoulli_(1 - p)
 *                             noise.div_(1 - p); input * noise
 *                                                          MulBackward0
 *
 * bernoulli_(double q) on the CPU without MKL (Debian's build: torch.
 * backends.mkl.is_available() is False) is a serial loop over the
 * contiguous noise tensor: for each element u = uniform_real<double>(0,
 * 1), i.e. the low 53 bits of one random64() times 2**-53, and the value
 * is (u < q). The scale is 1/(1 - p) in the input's dtype: a float32
 * noise holds 1.0f / (float)(1 - p). Checked bit for bit against torch
 * (tests/data/nn/layers/gen_layers.py).
 *
 * Left out: inplace=True (F.dropout_), feature/alpha dropout.
 */
#include "ops_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- F.dropout ---------------------------------------------------------- */

cg_status cg_dropout(cg_tensor *input, double p, bool training,
                     cg_generator *gen, cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!out)
        return cg__error_null("out");
    char pf[48];
    cg_format_float(p, pf, sizeof pf);
    if (p < 0.0 || p > 1.0)
        return cg__error(CG_ERR_VALUE,
                         "dropout probability has to be between 0 and 1, but "
                         "got %s",
                         pf);
    if (isnan(p))
        return cg__error(CG_ERR_RUNTIME,
                         "dropout probability has to be between 0 and 1, but "
                         "got nan");
    if (p == 0 || !training || cg_tensor_numel(input) == 0) {
        *out = cg_tensor_retain(input);
        return CG_OK;
    }
    if (cg_dtype_is_complex(input->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "\"bernoulli_scalar_cpu_\" not implemented for '%s'",
                         cg__dtype_scalar_name(input->dtype));
    cg_tensor *noise = NULL;
    cg_status st;
    if (p == 1) {
        st = cg__tensor_new(NULL, 0, input->dtype, &noise);
    } else {
        st = cg__tensor_new(input->shape, input->ndim, input->dtype, &noise);
        /* the scale in the input's dtype: 1.0f / (float)(1 - p) */
        double scale = input->dtype == CG_FLOAT32
                           ? (double)(1.0f / (float)(1 - p))
                           : 1.0 / (1 - p);
        if (st == CG_OK)
            st = cg__bernoulli_fill(noise, 1 - p, scale, gen);
    }
    if (st != CG_OK) {
        cg_tensor_release(noise);
        return st;
    }
    st = cg_mul(input, noise, out);
    cg_tensor_release(noise);
    return st;
}
