/*
 * fuzz_npy.c -- libFuzzer target for the .npy loader (cg_load_npy).
 *
 * The input is the file. A file the loader accepts is printed (repr into
 * a measured buffer: the measured length must be the written length),
 * saved again with cg_save_npy and loaded back: the reloaded tensor must
 * have the same dtype, shape and bytes, and saving it once more must give
 * the same file (np.save's output is canonical).
 */
#define _GNU_SOURCE
#include "cgrad.h"
#include "fuzz_util.h"

static fuzz_memfile in_file, out_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    fz_memfiles_open(&in_file, &out_file, "npy");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_memfile_write(&in_file, data, size) != 0)
        return 0;
    cg_tensor *t = NULL, *back = NULL;
    uint8_t *saved = NULL;
    size_t n = 0;
    if (cg_load_npy(in_file.path, &t) != CG_OK)
        return 0;

    /* repr: measure, then write into exactly that much */
    size_t len = 0, len2 = 0;
    if (cg_tensor_repr(t, NULL, 0, &len) == CG_OK) {
        char *buf = malloc(len + 1);
        if (buf && cg_tensor_repr(t, buf, len + 1, &len2) == CG_OK) {
            FUZZ_CHECK(len2 == len);
            FUZZ_CHECK(strlen(buf) == len);
        }
        free(buf);
    }

    /* save, reload, compare; a second save is byte-identical */
    if (cg_save_npy(t, out_file.path) != CG_OK)
        goto done;
    saved = fz_memfile_read(&out_file, &n);
    if (!saved)
        goto done;
    if (fz_memfile_write(&in_file, saved, n) != 0)
        goto done;
    if (!fz_must_succeed(cg_load_npy(in_file.path, &back), "reload"))
        goto done;
    fz_check_same_tensor(t, back);
    if (cg_save_npy(back, out_file.path) == CG_OK)
        fz_check_same_file(&out_file, saved, n);

done:
    free(saved);
    cg_tensor_release(back);
    cg_tensor_release(t);
    cg_clear_error();
    return 0;
}
