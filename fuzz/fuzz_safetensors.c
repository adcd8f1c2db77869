/*
 * fuzz_safetensors.c -- libFuzzer target for the safetensors loader
 * (cg_safetensors_load, with nn/json.c under it).
 *
 * The input is the file. A file the loader accepts is saved again
 * (cg_safetensors_save must accept anything the loader produced) and
 * reloaded: the entries must come back with the same names, kinds,
 * numbers, dtypes, shapes and bytes, and saving the reloaded dict must
 * give the same file as the first save.
 */
#define _GNU_SOURCE
#include "cgrad_nn.h"
#include "fuzz_util.h"

#include <math.h>

static fuzz_memfile in_file, out_file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    if (fz_memfile_open(&in_file, "st_in") != 0 ||
        fz_memfile_open(&out_file, "st_out") != 0) {
        perror("memfd_create");
        __builtin_trap();
    }
    return 0;
}

static void check_same(const cg_state_dict *a, const cg_state_dict *b)
{
    int n = cg_state_dict_size(a);
    FUZZ_CHECK(n == cg_state_dict_size(b));
    for (int i = 0; i < n; i++) {
        const char *na = NULL, *nb = NULL;
        cg_state_kind ka, kb;
        cg_tensor *ta = NULL, *tb = NULL;
        double xa = 0, xb = 0;
        FUZZ_CHECK(cg_state_dict_entry(a, i, &na, &ka, &ta, &xa) == CG_OK);
        FUZZ_CHECK(cg_state_dict_entry(b, i, &nb, &kb, &tb, &xb) == CG_OK);
        FUZZ_CHECK(strcmp(na, nb) == 0);
        FUZZ_CHECK(ka == kb);
        FUZZ_CHECK((isnan(xa) && isnan(xb)) ||
                   memcmp(&xa, &xb, sizeof xa) == 0);
        FUZZ_CHECK(cg_state_dict_find(a, na) == i);
        if (ka != CG_STATE_TENSOR) {
            FUZZ_CHECK(!ta && !tb);
            continue;
        }
        FUZZ_CHECK(ta && tb);
        FUZZ_CHECK(cg_tensor_dtype(ta) == cg_tensor_dtype(tb));
        int nd = cg_tensor_dim(ta);
        FUZZ_CHECK(nd == cg_tensor_dim(tb));
        FUZZ_CHECK(nd == 0 || memcmp(cg_tensor_shape(ta), cg_tensor_shape(tb),
                                     (size_t)nd * sizeof(int64_t)) == 0);
        FUZZ_CHECK(cg_tensor_is_contiguous(ta) && cg_tensor_is_contiguous(tb));
        size_t bytes =
            (size_t)cg_tensor_numel(ta) * cg_dtype_size(cg_tensor_dtype(ta));
        FUZZ_CHECK(bytes == 0 ||
                   memcmp(cg_tensor_data(ta), cg_tensor_data(tb), bytes) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_memfile_write(&in_file, data, size) != 0)
        return 0;
    cg_state_dict *sd = NULL, *back = NULL;
    uint8_t *saved1 = NULL, *saved2 = NULL;
    size_t n1 = 0, n2 = 0;
    if (cg_safetensors_load(in_file.path, &sd) != CG_OK)
        return 0;

    cg_status st = cg_safetensors_save(sd, out_file.path);
    if (st == CG_ERR_NOMEM)
        goto done;
    if (st != CG_OK) {
        fprintf(stderr, "save of a loaded dict failed: %s: %s\n",
                cg_status_name(st), cg_last_error());
        FUZZ_CHECK(st == CG_OK);
    }
    saved1 = fz_memfile_read(&out_file, &n1);
    if (!saved1 || fz_memfile_write(&in_file, saved1, n1) != 0)
        goto done;
    st = cg_safetensors_load(in_file.path, &back);
    if (st == CG_ERR_NOMEM)
        goto done;
    if (st != CG_OK) {
        fprintf(stderr, "reload of a saved dict failed: %s: %s\n",
                cg_status_name(st), cg_last_error());
        FUZZ_CHECK(st == CG_OK);
    }
    check_same(sd, back);
    if (cg_safetensors_save(back, out_file.path) != CG_OK)
        goto done;
    saved2 = fz_memfile_read(&out_file, &n2);
    if (!saved2)
        goto done;
    FUZZ_CHECK(n1 == n2 && memcmp(saved1, saved2, n1) == 0);

done:
    free(saved1);
    free(saved2);
    cg_state_dict_free(back);
    cg_state_dict_free(sd);
    cg_clear_error();
    return 0;
}
