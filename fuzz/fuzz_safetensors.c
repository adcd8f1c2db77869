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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cg_set_num_threads(1);
    fz_memfiles_open(&in_file, &out_file, "st");
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
        fz_check_same_tensor(ta, tb);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fz_memfile_write(&in_file, data, size) != 0)
        return 0;
    cg_state_dict *sd = NULL, *back = NULL;
    uint8_t *saved = NULL;
    size_t n = 0;
    if (cg_safetensors_load(in_file.path, &sd) != CG_OK)
        return 0;

    if (!fz_must_succeed(cg_safetensors_save(sd, out_file.path),
                         "save of a loaded dict"))
        goto done;
    saved = fz_memfile_read(&out_file, &n);
    if (!saved || fz_memfile_write(&in_file, saved, n) != 0)
        goto done;
    if (!fz_must_succeed(cg_safetensors_load(in_file.path, &back),
                         "reload of a saved dict"))
        goto done;
    check_same(sd, back);
    if (cg_safetensors_save(back, out_file.path) == CG_OK)
        fz_check_same_file(&out_file, saved, n);

done:
    free(saved);
    cg_state_dict_free(back);
    cg_state_dict_free(sd);
    cg_clear_error();
    return 0;
}
