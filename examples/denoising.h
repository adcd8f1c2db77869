/*
 * denoising.h -- the task that train_upsampler.c and train_distributed.c
 * both train on, written once so the two examples train the same model on
 * the same data: S^3 volumes of spheres and cubes with their noisy copies,
 * and the small Conv3d -> ReLU -> ConvTranspose3d model that removes the
 * noise. Not a program of its own: CMakeLists.txt compiles denoising.c into
 * both examples.
 */
#ifndef CGRAD_EXAMPLES_DENOISING_H
#define CGRAD_EXAMPLES_DENOISING_H

#include "cgrad_nn.h"

/* n clean volumes, shape (n, 1, S, S, S), and their noisy copies
 *     noisy = clean + noise * torch.randn(n, 1, S, S, S, generator=g)
 * Each volume holds 2 to 4 shapes, a sphere or an axis-aligned cube with a
 * random centre (in the middle half), radius or half-edge (1/8 to 1/4 of
 * S) and brightness (0.5 to 1); where shapes overlap the brighter one
 * shows. Everything is drawn from g, so one seed gives one data set.
 * out: *noisy and *clean, new tensors owned by the caller, written only on
 * success. Returns CG_OK, or the status of the call that failed (e.g.
 * CG_ERR_NOMEM). */
cg_status denoising_make_data(cg_generator *g, int n, int S, double noise,
                              cg_tensor **noisy, cg_tensor **clean);

/* The model:
 *     nn.Sequential(
 *         nn.Conv3d(1, C, 3, stride=2, padding=1),          # S^3 -> (S/2)^3
 *         nn.ReLU(),
 *         nn.ConvTranspose3d(C, 1, 4, stride=2, padding=1)) # (S/2)^3 -> S^3
 * with C = channels; the weights come from the default generator
 * (cg_manual_seed), in PyTorch's order. out: *model, freed with
 * cg_module_free by the caller; NULL on failure. */
cg_status denoising_make_model(int channels, cg_module **model);

#endif /* CGRAD_EXAMPLES_DENOISING_H */
