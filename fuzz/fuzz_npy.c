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

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    if (fz_memfile_open(&in_file, "npy_in") != 0 ||
        fz_memfile_open(&out_file, "npy_out") != 0) {
        perror("memfd_create");
        __builtin_trap();
    }
    return 0;
}

static void check_same(const cg_tensor *a, const cg_tensor *b)
{
    FUZZ_CHECK(cg_tensor_dtype(a) == cg_tensor_dtype(b));
    int nd = cg_tensor_dim(a);
    FUZZ_CHECK(nd == cg_tensor_dim(b));
    FUZZ_CHECK(nd == 0 || memcmp(cg_tensor_shape(a), cg_tensor_shape(b),
                                 (size_t)nd * sizeof(int64_t)) == 0);
    FUZZ_CHECK(cg_tensor_is_contiguous(a) && cg_tensor_is_contiguous(b));
    size_t bytes =
        (size_t)cg_tensor_numel(a) * cg_dtype_size(cg_tensor_dtype(a));
    FUZZ_CHECK(bytes == 0 ||
               memcmp(cg_tensor_data(a), cg_tensor_data(b), bytes) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_memfile_write(&in_file, data, size) != 0)
        return 0;
    cg_tensor *t = NULL, *back = NULL;
    uint8_t *saved1 = NULL, *saved2 = NULL;
    size_t n1 = 0, n2 = 0;
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
    saved1 = fz_memfile_read(&out_file, &n1);
    if (!saved1)
        goto done;
    if (fz_memfile_write(&in_file, saved1, n1) != 0)
        goto done;
    cg_status st = cg_load_npy(in_file.path, &back);
    if (st == CG_ERR_NOMEM)
        goto done;
    if (st != CG_OK) {
        fprintf(stderr, "reload failed: %s\n", cg_last_error());
        FUZZ_CHECK(st == CG_OK);
    }
    check_same(t, back);
    if (cg_save_npy(back, out_file.path) != CG_OK)
        goto done;
    saved2 = fz_memfile_read(&out_file, &n2);
    if (!saved2)
        goto done;
    FUZZ_CHECK(n1 == n2 && memcmp(saved1, saved2, n1) == 0);

done:
    free(saved1);
    free(saved2);
    cg_tensor_release(back);
    cg_tensor_release(t);
    cg_clear_error();
    return 0;
}
