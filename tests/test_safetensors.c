/*
 * test_safetensors.c -- nn/safetensors.c and nn/json.c: state dicts as
 * safetensors files, exchanged with PyTorch 1.13.
 *
 * Reference data: tests/data/nn/safetensors/ (gen_safetensors.py, real
 * torch): PyTorch's Sequential(Conv3d(2, 3, 3, padding=1), ReLU(),
 * ConvTranspose3d(3, 2, 2, stride=2)) after manual_seed(0) as a
 * safetensors file in the reference writer's layout with its output on a
 * fixed input; the bytes cgrad must write for the same model (the C model
 * built after cg_manual_seed(0) has PyTorch's initial values bit for bit);
 * and roundtrip.py's output after PyTorch loaded that file with
 * strict=True. When /usr/bin/python3 can import torch the round trip also
 * runs live on the file this test writes.
 *
 * TCases: roundtrip (PyTorch <-> cgrad, float32 and float64), format
 * (exact bytes, metadata numbers, complex64, what cannot be saved),
 * optim (an optimizer's state dict through a file), corrupt (each kind of
 * malformed file and its message), fuzz (thousands of mutated files, a
 * fixed seed), json (the strict parser), alloc (every allocation of a
 * load and a save failing in turn).
 */
#include "testutil.h"

#include "cgrad_nn.h"
#include "cgrad_optim.h"
#include "json_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32 convolutions sum in an unspecified order (see test_nn_conv.c);
 * float64 agrees to rounding. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static const char *build_path(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", CG_BUILD_DIR, name);
    return buf;
}

/* A whole file into a malloc'd buffer; *n its length. */
static unsigned char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void write_file(const char *path, const void *data, size_t n)
{
    /* a fresh file: rewriting one in place makes ext4 flush it each time */
    remove(path);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* ======================================================================
 * The round trip with PyTorch
 * ====================================================================== */

/* Sequential(Conv3d(2, 3, 3, padding=1), ReLU(), ConvTranspose3d(3, 2, 2,
 * stride=2)) in dtype dt, initialised from the default generator. */
static cg_module *make_model(cg_dtype dt)
{
    cg_module *seq = NULL, *c = NULL, *r = NULL, *t = NULL;
    tu_ok(cg_sequential_new(&seq));
    cg_conv3d_opts co = cg_conv3d_options(2, 3, CG_INT3(3));
    co.padding = CG_INT3(1);
    co.dtype = dt;
    tu_ok(cg_conv3d_new(&co, &c));
    tu_ok(cg_relu_new(&r));
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(3, 2, CG_INT3(2));
    to.stride = CG_INT3(2);
    to.dtype = dt;
    tu_ok(cg_conv_transpose3d_new(&to, &t));
    tu_ok(cg_sequential_append(seq, c));
    tu_ok(cg_sequential_append(seq, r));
    tu_ok(cg_sequential_append(seq, t));
    cg_module_free(c);
    cg_module_free(r);
    cg_module_free(t);
    return seq;
}

static cg_tensor *forward(cg_module *m, cg_tensor *x)
{
    cg_tensor *y = NULL;
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_module_forward(m, x, &y));
    cg_set_grad_enabled(prev);
    return y;
}

static bool torch_available(void)
{
    static int known = -1; /* asked once per process */
    if (known < 0)
        known = system("/usr/bin/python3 -c 'import torch, numpy' "
                       ">/dev/null 2>&1") == 0;
    return known == 1;
}

static const struct {
    const char *tag;
    cg_dtype dt;
    double tol;
} round_trips[] = {{"f32", CG_FLOAT32, TOL_F32}, {"f64", CG_FLOAT64, TOL_F64}};

START_TEST(test_roundtrip)
{
    const char *tag = round_trips[_i].tag;
    cg_dtype dt = round_trips[_i].dt;
    double tol = round_trips[_i].tol;
    char rel[256], mine[1100];
    snprintf(rel, sizeof rel, "nn/safetensors/x_%s.npy", tag);
    cg_tensor *x = tu_load(rel);
    snprintf(rel, sizeof rel, "nn/safetensors/y_torch_%s.npy", tag);
    cg_tensor *y_torch = tu_load(rel);
    snprintf(rel, sizeof rel, "nn/safetensors/y_roundtrip_%s.npy", tag);
    cg_tensor *y_round = tu_load(rel);

    /* cgrad -> file: the C model (PyTorch's init after seed 0) writes
     * exactly the bytes of the committed file PyTorch loaded strictly */
    cg_manual_seed(0);
    cg_module *m = make_model(dt);
    snprintf(mine, sizeof mine, "%s", build_path(""));
    snprintf(mine + strlen(mine), sizeof mine - strlen(mine),
             "st_c_model_%s.safetensors", tag);
    tu_ok(cg_module_save_safetensors(m, mine));
    size_t na, nb;
    unsigned char *a = read_file(mine, &na);
    snprintf(rel, sizeof rel, "nn/safetensors/c_layout_%s.safetensors", tag);
    unsigned char *b = read_file(tu_data_path(rel), &nb);
    ck_assert_int_eq(na, nb);
    ck_assert_msg(memcmp(a, b, na) == 0, "%s: bytes differ", tag);
    free(a);
    free(b);
    /* ... and PyTorch's output for it is the C model's */
    cg_tensor *y = forward(m, x);
    tu_assert_close(y, y_round, tol, "C model vs torch after loading it");
    tu_assert_close(y, y_torch, tol, "C model vs torch's");

    /* live: PyTorch loads the file just written (strict=True) */
    if (torch_available()) {
        char cmd[4400], out[1100], script[1100], xs[1100];
        snprintf(out, sizeof out, "%s", build_path(""));
        snprintf(out + strlen(out), sizeof out - strlen(out),
                 "st_roundtrip_%s.npy", tag);
        remove(out);
        /* tu_data_path has one static buffer: copy each path out */
        snprintf(script, sizeof script, "%s",
                 tu_data_path("nn/safetensors/roundtrip.py"));
        snprintf(rel, sizeof rel, "nn/safetensors/x_%s.npy", tag);
        snprintf(xs, sizeof xs, "%s", tu_data_path(rel));
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s %s", script, mine,
                 xs, out);
        ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
        cg_tensor *live = NULL;
        tu_ok(cg_load_npy(out, &live));
        tu_assert_close(y, live, tol, "live round trip");
        cg_tensor_release(live);
    }
    cg_tensor_release(y);
    cg_module_free(m);

    /* PyTorch's file -> cgrad: a differently initialised model takes
     * PyTorch's values and gives PyTorch's output */
    cg_manual_seed(99);
    m = make_model(dt);
    snprintf(rel, sizeof rel, "nn/safetensors/torch_%s.safetensors", tag);
    tu_ok(cg_module_load_safetensors(m, tu_data_path(rel), true));
    y = forward(m, x);
    tu_assert_close(y, y_torch, tol, "torch's file in C");
    cg_tensor_release(y);
    cg_module_free(m);

    cg_tensor_release(x);
    cg_tensor_release(y_torch);
    cg_tensor_release(y_round);
}
END_TEST

/* The file PyTorch wrote, entry by entry: names in offset order (the
 * reference layout: sorted by name), PyTorch's "format" tag skipped. */
START_TEST(test_read_torch_file)
{
    cg_state_dict *sd = NULL;
    tu_ok(cg_safetensors_load(
        tu_data_path("nn/safetensors/torch_f32.safetensors"), &sd));
    ck_assert_int_eq(cg_state_dict_size(sd), 4);
    const char *want[4] = {"0.bias", "0.weight", "2.bias", "2.weight"};
    for (int i = 0; i < 4; i++) {
        const char *name;
        cg_state_kind kind;
        cg_tensor *t;
        tu_ok(cg_state_dict_entry(sd, i, &name, &kind, &t, NULL));
        ck_assert_str_eq(name, want[i]);
        ck_assert_int_eq(kind, CG_STATE_TENSOR);
        ck_assert_int_eq(cg_tensor_dtype(t), CG_FLOAT32);
    }
    /* and the values are the C model's after seed 0 */
    cg_manual_seed(0);
    cg_module *m = make_model(CG_FLOAT32);
    cg_state_dict *ours = NULL;
    tu_ok(cg_module_state_dict(m, &ours));
    for (int i = 0; i < 4; i++) {
        const char *name;
        cg_tensor *t, *u;
        tu_ok(cg_state_dict_entry(ours, i, &name, NULL, &t, NULL));
        tu_ok(cg_state_dict_entry(sd, cg_state_dict_find(sd, name), NULL, NULL,
                                  &u, NULL));
        tu_assert_bitwise(t, u, name);
    }
    cg_state_dict_free(ours);
    cg_state_dict_free(sd);
    cg_module_free(m);
}
END_TEST

/* PyTorch's BatchNorm3d file: num_batches_tracked is I64 there, a 0-d
 * float64 tensor in cgrad; the eval-mode output is PyTorch's. */
START_TEST(test_batchnorm_file)
{
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(3);
    cg_module *bn = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &bn));
    tu_ok(cg_module_load_safetensors(
        bn, tu_data_path("nn/safetensors/torch_bn.safetensors"), true));
    double v = 0.0;
    cg_tensor *nbt = cg_batch_norm3d_num_batches_tracked(bn);
    ck_assert_int_eq(cg_tensor_dtype(nbt), CG_FLOAT64);
    tu_ok(cg_tensor_item(nbt, &v, NULL));
    ck_assert_double_eq(v, 2.0);
    tu_ok(cg_module_eval(bn));
    cg_tensor *x = tu_load("nn/safetensors/x_bn.npy");
    cg_tensor *want = tu_load("nn/safetensors/y_bn.npy");
    cg_tensor *y = forward(bn, x);
    tu_assert_close(y, want, TOL_F32, "BatchNorm3d eval");
    /* and back: saved as F64, which PyTorch's load_state_dict converts */
    const char *path = build_path("st_bn.safetensors");
    tu_ok(cg_module_save_safetensors(bn, path));
    cg_module *bn2 = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &bn2));
    tu_ok(cg_module_load_safetensors(bn2, path, true));
    tu_ok(cg_module_eval(bn2));
    cg_tensor *y2 = forward(bn2, x);
    tu_assert_bitwise(y2, y, "BatchNorm3d through cgrad's file");
    cg_tensor_release(y2);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_tensor_release(want);
    cg_module_free(bn2);
    cg_module_free(bn);
}
END_TEST

/* ======================================================================
 * Format details
 * ====================================================================== */

START_TEST(test_format_empty_and_metadata)
{
    const char *path = build_path("st_empty.safetensors");
    cg_state_dict *sd = NULL;
    tu_ok(cg_state_dict_new(&sd));
    tu_ok(cg_safetensors_save(sd, path));
    size_t n;
    unsigned char *b = read_file(path, &n);
    /* the reference writer's test_empty: length 8, "{}" and 6 spaces */
    const unsigned char empty[16] = {8,   0,   0,   0,   0,   0,   0,   0,
                                     '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    ck_assert_int_eq(n, 16);
    ck_assert(memcmp(b, empty, 16) == 0);
    free(b);
    cg_state_dict *back = NULL;
    tu_ok(cg_safetensors_load(path, &back));
    ck_assert_int_eq(cg_state_dict_size(back), 0);
    cg_state_dict_free(back);

    /* one tensor (the reference's test_serialization: "attn.0", F32
     * [1, 2, 3] = 0..5): the same 96 bytes */
    float v[6] = {0, 1, 2, 3, 4, 5};
    int64_t shape[3] = {1, 2, 3};
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(v, shape, 3, CG_FLOAT32, &t));
    tu_ok(cg_state_dict_set_tensor(sd, "attn.0", t));
    cg_tensor_release(t);
    tu_ok(cg_safetensors_save(sd, path));
    b = read_file(path, &n);
    const char *h = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],"
                    "\"data_offsets\":[0,24]}}";
    ck_assert_int_eq(n, 8 + 64 + 24);
    ck_assert_int_eq(b[0], 64);
    ck_assert(memcmp(b + 8, h, strlen(h)) == 0);
    for (size_t i = 8 + strlen(h); i < 72; i++)
        ck_assert_int_eq(b[i], ' ');
    ck_assert(memcmp(b + 72, v, 24) == 0);
    free(b);

    /* numbers, bools and None go to __metadata__, first */
    tu_ok(cg_state_dict_set_number(sd, "lr", 0.001));
    tu_ok(cg_state_dict_set_bool(sd, "amsgrad", false));
    tu_ok(cg_state_dict_set_none(sd, "foreach"));
    tu_ok(cg_safetensors_save(sd, path));
    b = read_file(path, &n);
    const char *hm = "{\"__metadata__\":{\"lr\":\"0.001\",\"amsgrad\":"
                     "\"False\",\"foreach\":\"None\"},\"attn.0\":";
    ck_assert(memcmp(b + 8, hm, strlen(hm)) == 0);
    ck_assert_int_eq((b[0] | b[1] << 8) % 8, 0);
    free(b);
    cg_state_dict_free(sd);
}
END_TEST

START_TEST(test_metadata_numbers_exact)
{
    const double values[] = {0.1,
                             1.0 / 3.0,
                             -0.0,
                             0.0,
                             5e-324,
                             2.2250738585072014e-308,
                             1.7976931348623157e308,
                             1e-8,
                             3.0,
                             -123456789012345678.0,
                             0.30000000000000004,
                             INFINITY,
                             -INFINITY,
                             NAN};
    const char *texts[] = {"0.1",  "0.3333333333333333",
                           "-0",   "0",
                           NULL,   NULL,
                           NULL,   "1e-08",
                           "3",    NULL,
                           NULL,   "inf",
                           "-inf", "nan"};
    int n = (int)(sizeof values / sizeof *values);
    cg_state_dict *sd = NULL;
    tu_ok(cg_state_dict_new(&sd));
    char name[16];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "v%d", i);
        tu_ok(cg_state_dict_set_number(sd, name, values[i]));
    }
    tu_ok(cg_state_dict_set_bool(sd, "t", true));
    const char *path = build_path("st_numbers.safetensors");
    tu_ok(cg_safetensors_save(sd, path));
    size_t len;
    char *text = (char *)read_file(path, &len);
    text[len] = '\0';
    for (int i = 0; i < n; i++) {
        if (!texts[i])
            continue;
        char want[64];
        snprintf(want, sizeof want, "\"v%d\":\"%s\"", i, texts[i]);
        ck_assert_msg(strstr(text + 8, want), "%s not in %s", want, text + 8);
    }
    free(text);
    cg_state_dict *back = NULL;
    tu_ok(cg_safetensors_load(path, &back));
    ck_assert_int_eq(cg_state_dict_size(back), n + 1);
    for (int i = 0; i < n; i++) {
        cg_state_kind kind;
        double v;
        tu_ok(cg_state_dict_entry(back, i, NULL, &kind, NULL, &v));
        ck_assert_int_eq(kind, CG_STATE_NUMBER);
        if (isnan(values[i]))
            ck_assert(isnan(v));
        else
            ck_assert_msg(memcmp(&v, &values[i], sizeof v) == 0,
                          "v%d: %.17g != %.17g", i, v, values[i]);
    }
    cg_state_kind kind;
    double v;
    tu_ok(cg_state_dict_entry(back, n, NULL, &kind, NULL, &v));
    ck_assert_int_eq(kind, CG_STATE_BOOL);
    ck_assert_double_eq(v, 1.0);
    cg_state_dict_free(back);
    cg_state_dict_free(sd);
}
END_TEST

START_TEST(test_dtypes_and_refusals)
{
    const char *path = build_path("st_dtypes.safetensors");
    cg_state_dict *sd = NULL;
    tu_ok(cg_state_dict_new(&sd));
    cg_tensor *c = NULL, *d = NULL, *tr = NULL, *s = NULL, *e = NULL;
    tu_ok(cg_tensor_literal("[[1+2j, -3.5-0.25j], [0.5j, 7]]", &c));
    tu_ok(cg_tensor_literal_dtype("[[1., 2., 3.], [4., 5., 6.]]", CG_FLOAT64,
                                  &d));
    tu_ok(cg_tensor_transpose(d, 0, 1, &tr)); /* not contiguous */
    tu_ok(cg_tensor_literal("2.5", &s));      /* 0-d */
    int64_t z[2] = {0, 3};
    tu_ok(cg_zeros(z, 2, CG_FLOAT32, &e)); /* empty */
    tu_ok(cg_state_dict_set_tensor(sd, "c", c));
    tu_ok(cg_state_dict_set_tensor(sd, "t", tr));
    tu_ok(cg_state_dict_set_tensor(sd, "s", s));
    tu_ok(cg_state_dict_set_tensor(sd, "e", e));
    tu_ok(cg_state_dict_set_tensor(sd, "quote\"\\\n\x01é", s));
    tu_ok(cg_safetensors_save(sd, path));
    cg_state_dict *back = NULL;
    tu_ok(cg_safetensors_load(path, &back));
    ck_assert_int_eq(cg_state_dict_size(back), 5);
    const char *names[5] = {"c", "t", "s", "e", "quote\"\\\n\x01é"};
    cg_tensor *want[5] = {c, tr, s, e, s};
    for (int i = 0; i < 5; i++) {
        const char *name;
        cg_tensor *t;
        tu_ok(cg_state_dict_entry(back, i, &name, NULL, &t, NULL));
        ck_assert_str_eq(name, names[i]);
        ck_assert(cg_tensor_is_contiguous(t));
        tu_assert_bitwise(t, want[i], name);
    }
    cg_state_dict_free(back);

    /* what cannot be written: nothing is created */
    cg_tensor *c128 = NULL;
    tu_ok(cg_tensor_to(c, CG_COMPLEX128, &c128));
    cg_state_dict *bad = NULL;
    tu_ok(cg_state_dict_new(&bad));
    tu_ok(cg_state_dict_set_tensor(bad, "z", c128));
    const char *nopath = build_path("st_never_written.safetensors");
    remove(nopath);
    tu_fails(cg_safetensors_save(bad, nopath), CG_ERR_VALUE,
             "cannot save 'z' to safetensors: safetensors has no dtype for "
             "complex128 (save view_as_real of it instead)");
    tu_ok(cg_state_dict_remove(bad, "z"));
    tu_ok(cg_state_dict_set_number(bad, "__metadata__", 1));
    tu_fails(cg_safetensors_save(bad, nopath), CG_ERR_VALUE,
             "cannot save an entry named '__metadata__' to safetensors: the "
             "name is reserved");
    tu_ok(cg_state_dict_remove(bad, "__metadata__"));
    tu_ok(cg_state_dict_set_number(bad, "ab\xff", 1));
    tu_fails(cg_safetensors_save(bad, nopath), CG_ERR_VALUE,
             "cannot save 'ab\\xff' to safetensors: the name is not valid "
             "UTF-8 (byte 2)");
    FILE *f = fopen(nopath, "rb");
    ck_assert_ptr_null(f);
    tu_fails(cg_safetensors_save(sd, "/nonexistent-dir/x.safetensors"),
             CG_ERR_IO,
             "[Errno 2] No such file or directory: "
             "'/nonexistent-dir/x.safetensors'");
    tu_fails(cg_safetensors_save(NULL, path), CG_ERR_MISUSE,
             "state dict must not be NULL");
    tu_fails(cg_safetensors_load(path, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    cg_state_dict_free(bad);
    cg_tensor_release(c128);
    cg_state_dict_free(sd);
    cg_tensor_release(c);
    cg_tensor_release(d);
    cg_tensor_release(tr);
    cg_tensor_release(s);
    cg_tensor_release(e);
}
END_TEST

/* ======================================================================
 * An optimizer's state through a file
 * ====================================================================== */

static void assert_same_dict(const cg_state_dict *a, const cg_state_dict *b)
{
    ck_assert_int_eq(cg_state_dict_size(a), cg_state_dict_size(b));
    for (int i = 0; i < cg_state_dict_size(a); i++) {
        const char *name;
        cg_state_kind ka, kb;
        cg_tensor *ta, *tb;
        double na, nb;
        tu_ok(cg_state_dict_entry(a, i, &name, &ka, &ta, &na));
        int j = cg_state_dict_find(b, name);
        ck_assert_msg(j >= 0, "%s lost", name);
        tu_ok(cg_state_dict_entry(b, j, NULL, &kb, &tb, &nb));
        ck_assert_msg(ka == kb, "%s: kind %s became %s", name,
                      cg_state_kind_name(ka), cg_state_kind_name(kb));
        if (ka == CG_STATE_TENSOR)
            tu_assert_bitwise(tb, ta, name);
        else
            ck_assert_msg(memcmp(&na, &nb, sizeof na) == 0,
                          "%s: %.17g != %.17g", name, na, nb);
    }
}

START_TEST(test_optimizer_state)
{
    cg_manual_seed(0);
    cg_module *m = make_model(CG_FLOAT32);
    int np = cg_module_num_parameters(m);
    cg_tensor *params[8];
    for (int i = 0; i < np; i++)
        tu_ok(cg_module_named_parameter(m, i, NULL, &params[i]));
    cg_tensor *x = tu_load("nn/safetensors/x_f32.npy");
    for (int k = 0; k < 3; k++) {
        cg_optimizer *opt = NULL;
        if (k == 0) {
            cg_adam_options o = cg_adam_defaults();
            o.amsgrad = true;
            o.lr = 0.1;
            tu_ok(cg_adam_new(params, np, &o, &opt));
        } else if (k == 1) {
            cg_sgd_options o = cg_sgd_defaults();
            o.lr = 0.01;
            o.momentum = 0.9;
            tu_ok(cg_sgd_new(params, np, &o, &opt));
        } else {
            cg_rmsprop_options o = cg_rmsprop_defaults();
            tu_ok(cg_rmsprop_new(params, np, &o, &opt));
        }
        for (int step = 0; step < 2; step++) {
            tu_ok(cg_optimizer_zero_grad(opt, true));
            cg_tensor *y = NULL, *loss = NULL;
            tu_ok(cg_module_forward(m, x, &y));
            tu_ok(cg_mean(y, &loss));
            tu_ok(cg_tensor_backward(loss, NULL, false));
            tu_ok(cg_optimizer_step(opt));
            cg_tensor_release(y);
            cg_tensor_release(loss);
        }
        cg_state_dict *sd = NULL, *back = NULL;
        tu_ok(cg_optimizer_state_dict(opt, &sd));
        const char *path = build_path("st_optim.safetensors");
        tu_ok(cg_safetensors_save(sd, path));
        tu_ok(cg_safetensors_load(path, &back));
        assert_same_dict(sd, back);
        assert_same_dict(back, sd);
        /* and the optimizer takes it back */
        tu_ok(cg_optimizer_load_state_dict(opt, back));
        cg_state_dict *again = NULL;
        tu_ok(cg_optimizer_state_dict(opt, &again));
        assert_same_dict(sd, again);
        cg_state_dict_free(again);
        cg_state_dict_free(back);
        cg_state_dict_free(sd);
        cg_optimizer_free(opt);
    }
    cg_tensor_release(x);
    cg_module_free(m);
}
END_TEST

/* ======================================================================
 * Malformed files
 * ====================================================================== */

/* A file: the 8-byte length `declared` (or the header's own length when
 * declared is UINT64_MAX), the header text, then `data` bytes 0, 1, ... */
static void make_file(const char *path, uint64_t declared, const char *header,
                      size_t data)
{
    size_t hl = strlen(header);
    size_t n = 8 + hl + data;
    unsigned char *b = malloc(n + 1);
    ck_assert_ptr_nonnull(b);
    uint64_t len = declared == UINT64_MAX ? hl : declared;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(len >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i < data; i++)
        b[8 + hl + i] = (unsigned char)i;
    write_file(path, b, n);
    free(b);
}

typedef struct corrupt_case {
    uint64_t declared;   /* UINT64_MAX: the header's length */
    const char *header;  /* JSON text as bytes */
    size_t data;         /* bytes after the header */
    const char *message; /* after "cannot load '<path>': " */
} corrupt_case;

#define OWN UINT64_MAX
#define T8(name, offs)                                                         \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],"                           \
    "\"data_offsets\":" offs "}"

static const corrupt_case corrupt_cases[] = {
    /* lengths */
    {OWN, "", 0, "the header is empty"},
    {1099511627776ull, "{}", 0,
     "the header length 1099511627776 is larger than the 100000000 bytes "
     "allowed"},
    {UINT64_MAX - 1, "{}", 0,
     "the header length 18446744073709551614 is larger than the 100000000 "
     "bytes allowed"},
    {1000, "{}      ", 0,
     "the header length 1000 runs past the end of the file (8 bytes after "
     "the length)"},
    /* text */
    {OWN, "{\"a\xc3\x28\":1}", 0, "the header is not valid UTF-8 (byte 3)"},
    {OWN, "{\"\xed\xa0\x80\":1}", 0, "the header is not valid UTF-8 (byte 2)"},
    {OWN, "{" T8("a", "[0,8]") ",}", 8,
     "the header is not valid JSON: trailing comma at line 1 column 55"},
    {OWN, "{\"a\":{\"dtype\":\"F32\" \"shape\":[2]}}", 8,
     "the header is not valid JSON: expected ',' or '}' at line 1 column 21"},
    {OWN, "{\"a\":[01]}", 0,
     "the header is not valid JSON: invalid number: leading zero at line 1 "
     "column 8"},
    {OWN, "{\"a\":NaN}", 0,
     "the header is not valid JSON: expected value at line 1 column 6"},
    {OWN, "{\"a\":\"\\ud800\"}", 0,
     "the header is not valid JSON: lone leading surrogate in hex escape at "
     "line 1 column 7"},
    {OWN, "{\"a\":1} x", 0,
     "the header is not valid JSON: trailing characters at line 1 column 9"},
    {OWN, "{\"a\":\n{\"b\":1,\n\"b\":2}}", 0,
     "the header is not valid JSON: duplicate key \"b\" at line 3 column 1"},
    {OWN, "{" T8("a", "[0,8]") "," T8("a", "[0,8]") "}", 8,
     "the header is not valid JSON: duplicate key \"a\" at line 1 column 55"},
    {OWN, "[1,2]", 0, "the header is a JSON array, not an object"},
    {OWN, "{\"a\\u0000b\":{}}", 0, "a name holds a NUL character (\\u0000)"},
    /* entries */
    {OWN, "{\"a\":[1]}", 0, "entry 'a' is an array, not an object"},
    {OWN, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
     "tensor 'a' has no \"data_offsets\""},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
     "\"order\":\"C\"}}",
     8,
     "tensor 'a' has an unknown field 'order' (expected dtype, shape and "
     "data_offsets)"},
    {OWN, "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     "tensor 'a' has dtype 'F16', which cgrad cannot hold (it loads F32, "
     "F64, C64 and I64)"},
    {OWN, "{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "tensor 'a' has an unknown dtype 'f32'"},
    {OWN, "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "the dtype of tensor 'a' is not a string"},
    {OWN, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
     8, "the shape of tensor 'a' is not a list of non-negative integers"},
    {OWN, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
     8, "the shape of tensor 'a' is not a list of non-negative integers"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
     "1],\"data_offsets\":[0,4]}}",
     4, "tensor 'a' has 17 dimensions; cgrad tensors have at most 16"},
    {OWN, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
     "the data_offsets of tensor 'a' are not two non-negative integers "
     "[begin, end]"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,"
     "18446744073709551616]}}",
     8,
     "the data_offsets of tensor 'a' are not two non-negative integers "
     "[begin, end]"},
    /* huge shapes */
    {OWN,
     "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4],"
     "\"data_offsets\":[0,8]}}",
     8,
     "the shape of tensor 'a' overflows: its element or byte count does not "
     "fit in 64 bits"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[9223372036854775808,0],"
     "\"data_offsets\":[0,0]}}",
     0,
     "the shape of tensor 'a' overflows: its element or byte count does not "
     "fit in 64 bits"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,0,4294967296],"
     "\"data_offsets\":[0,0]}}",
     0,
     "the shape of tensor 'a' overflows: its element or byte count does not "
     "fit in 64 bits"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[3,0,5],"
     "\"data_offsets\":[0,0]}," T8("b", "[0,9]") "}",
     8,
     "tensor 'b' has dtype F32 and 2 elements (8 bytes), but its "
     "data_offsets [0, 9] span 9 bytes"},
    {OWN,
     "{\"a\":{\"dtype\":\"C64\",\"shape\":[3037000500,3037000500],"
     "\"data_offsets\":[0,8]}}",
     8,
     "the shape of tensor 'a' overflows: its element or byte count does not "
     "fit in 64 bits"},
    {OWN,
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000000],"
     "\"data_offsets\":[0,8]}}",
     8,
     "tensor 'a' has dtype F32 and 1000000000000 elements (4000000000000 "
     "bytes), but its data_offsets [0, 8] span 8 bytes"},
    {OWN, "{\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8,
     "tensor 'n' holds the int64 value 506097522914230528, which a float64 "
     "tensor cannot hold exactly"},
    {OWN, "{" T8("a", "[8,0]") "}", 8,
     "tensor 'a' has data_offsets [8, 0]: the end is before the beginning"},
    /* offsets */
    {OWN, "{" T8("a", "[0,8]") "," T8("b", "[4,12]") "}", 12,
     "the data of tensor 'b' [4, 12) overlaps that of tensor 'a'"},
    {OWN, "{" T8("b", "[8,16]") "," T8("a", "[0,8]") "," T8("c", "[0,8]") "}",
     16, "the data of tensor 'c' [0, 8) overlaps that of tensor 'a'"},
    {OWN, "{" T8("a", "[0,8]") "," T8("b", "[12,20]") "}", 20,
     "bytes [8, 12) of the data belong to no tensor (before tensor 'b')"},
    {OWN, "{" T8("a", "[4,12]") "}", 12,
     "bytes [0, 4) of the data belong to no tensor (before tensor 'a')"},
    {OWN, "{" T8("a", "[0,8]") "}", 12,
     "the tensors cover 8 bytes but the data is 12 bytes long"},
    {OWN, "{" T8("a", "[0,8]") "}", 4,
     "tensor 'a' has data_offsets [0, 8], past the end of the 4 data bytes"},
    {OWN, "{}", 4, "the tensors cover 0 bytes but the data is 4 bytes long"},
    /* metadata */
    {OWN, "{\"__metadata__\":[]}", 0, "__metadata__ is not an object"},
    {OWN, "{\"__metadata__\":{\"lr\":0.1}}", 0,
     "the __metadata__ value of 'lr' is not a string"},
    {OWN, "{\"__metadata__\":{\"lr\":\"fast\"}}", 0,
     "the __metadata__ value of 'lr' is 'fast', which is not a number, True, "
     "False or None"},
    {OWN, "{\"__metadata__\":{\"lr\":\"0x10\"}}", 0,
     "the __metadata__ value of 'lr' is '0x10', which is not a number, "
     "True, False or None"},
    {OWN, "{\"__metadata__\":{\"lr\":\" 1\"}}", 0,
     "the __metadata__ value of 'lr' is ' 1', which is not a number, True, "
     "False or None"},
    {OWN, "{\"__metadata__\":{\"a\":\"1\"}," T8("a", "[0,8]") "}", 8,
     "'a' is both a tensor and a __metadata__ entry"},
};

START_TEST(test_corrupt)
{
    const corrupt_case *c = &corrupt_cases[_i];
    char path[1100], want[2048];
    snprintf(path, sizeof path, "%s", build_path(""));
    snprintf(path + strlen(path), sizeof path - strlen(path),
             "st_corrupt_%d.safetensors", _i);
    make_file(path, c->declared, c->header, c->data);
    snprintf(want, sizeof want, "cannot load '%s': %s", path, c->message);
    cg_state_dict *sd = NULL;
    tu_fails(cg_safetensors_load(path, &sd), CG_ERR_VALUE, want);
    ck_assert_ptr_null(sd);
}
END_TEST

/* Short files and every truncation of a valid one. */
START_TEST(test_truncated)
{
    size_t n;
    unsigned char *b =
        read_file(tu_data_path("nn/safetensors/torch_f32.safetensors"), &n);
    const char *path = build_path("st_truncated.safetensors");
    char want[2048];
    for (size_t len = 0; len < n; len++) {
        write_file(path, b, len);
        cg_state_dict *sd = NULL;
        cg_status st = cg_safetensors_load(path, &sd);
        ck_assert_msg(st == CG_ERR_VALUE, "%zu bytes: %s", len,
                      cg_status_name(st));
        ck_assert_ptr_null(sd);
        if (len < 8) {
            snprintf(want, sizeof want,
                     "cannot load '%s': the file is %zu bytes long, too "
                     "short for the 8-byte header length",
                     path, len);
            ck_assert_str_eq(cg_last_error(), want);
        } else if (len == n - 1) {
            snprintf(want, sizeof want,
                     "cannot load '%s': tensor '2.weight' has data_offsets "
                     "[668, 860], past the end of the 859 data bytes",
                     path);
            ck_assert_str_eq(cg_last_error(), want);
        }
    }
    /* one byte more is an error too */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    write_file(path, longer, n + 1);
    cg_state_dict *sd = NULL;
    snprintf(want, sizeof want,
             "cannot load '%s': the tensors cover 860 bytes but the data is "
             "861 bytes long",
             path);
    tu_fails(cg_safetensors_load(path, &sd), CG_ERR_VALUE, want);
    free(longer);
    free(b);
    char missing[1200];
    snprintf(missing, sizeof missing,
             "[Errno 2] No such file or directory: '%s'",
             build_path("st_no_such_file"));
    tu_fails(cg_safetensors_load(build_path("st_no_such_file"), &sd), CG_ERR_IO,
             missing);
}
END_TEST

/* ======================================================================
 * Fuzz: mutations of a valid file, fixed seed
 * ====================================================================== */

static uint64_t rng_state;

static uint64_t next_rand(void)
{
    /* xorshift64*: a fixed sequence for a fixed seed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

#define FUZZ_ROUNDS 4000

START_TEST(test_fuzz)
{
    size_t n;
    unsigned char *orig =
        read_file(tu_data_path("nn/safetensors/torch_f32.safetensors"), &n);
    size_t header_end = 8 + (size_t)(orig[0] | orig[1] << 8);
    unsigned char *b = malloc(n + 64);
    const char *path = build_path("st_fuzz.safetensors");
    const char *tokens[] = {
        "{",     "}",    "[",       "]",    ",",
        ":",     "\"",   "\\",      "0",    "-1",
        "1e400", "null", "\\u0000", "\xff", "18446744073709551615",
        "F64",   "C64",  " "};
    rng_state = 0x5eed5afe7e115ull;
    int ok = 0, errors = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        memcpy(b, orig, n);
        size_t len = n;
        int edits = 1 + (int)(next_rand() % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = next_rand();
            /* mostly in the header, where the parsing is */
            if (len == 0)
                break;
            size_t at = (r >> 8) % 4 && header_end < len
                            ? (size_t)((r >> 16) % header_end)
                            : (size_t)((r >> 16) % len);
            switch (r % 6) {
            case 0: /* flip a bit */
                b[at] ^= (unsigned char)(1u << ((r >> 40) % 8));
                break;
            case 1: /* a random byte */
                b[at] = (unsigned char)(r >> 48);
                break;
            case 2: /* truncate */
                len = at;
                break;
            case 3: { /* overwrite with a JSON token */
                const char *t =
                    tokens[(r >> 40) % (sizeof tokens / sizeof *tokens)];
                size_t k = strlen(t);
                if (at + k <= len)
                    memcpy(b + at, t, k);
                break;
            }
            case 4: /* a digit changed: offsets and shapes */
                if (b[at] >= '0' && b[at] <= '9')
                    b[at] = (unsigned char)('0' + (r >> 40) % 10);
                else
                    b[at] = (unsigned char)('0' + (r >> 40) % 10);
                break;
            default: /* the length field */
                b[(r >> 40) % 8] = (unsigned char)(r >> 48);
                break;
            }
        }
        write_file(path, b, len);
        cg_state_dict *sd = NULL;
        cg_status st = cg_safetensors_load(path, &sd);
        if (st == CG_OK) {
            ok++;
            ck_assert_ptr_nonnull(sd);
            cg_state_dict_free(sd);
        } else {
            errors++;
            ck_assert_msg(st == CG_ERR_VALUE, "round %d: %s: %s", round,
                          cg_status_name(st), cg_last_error());
            ck_assert(strncmp(cg_last_error(), "cannot load '", 13) == 0);
            ck_assert_ptr_null(sd);
        }
    }
    ck_assert_int_eq(ok + errors, FUZZ_ROUNDS);
    ck_assert_int_gt(errors, FUZZ_ROUNDS / 2);
    ck_assert_int_gt(ok, 0); /* some edits (in the data) keep it valid */
    free(b);
    free(orig);
}
END_TEST

/* ======================================================================
 * The JSON parser
 * ====================================================================== */

static const char *const json_valid[] = {
    "{}",
    " \t\r\n{ } ",
    "[]",
    "[1,-0,0.5,1e5,1E+5,-1.5e-7]",
    "\"\"",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
    "\"\\u00e9\\ud83d\\ude00\"",
    "{\"a\":{\"b\":[true,false,null]}}",
    "18446744073709551615",
    "\"\xc3\xa9\xf0\x9f\x98\x80\"",
    "123456789012345678901234567890",
};

static const char *const json_invalid[] = {
    "",
    " ",
    "{",
    "}",
    "[1,]",
    "{\"a\":1,}",
    "{'a':1}",
    "{a:1}",
    "[01]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[+1]",
    "[-]",
    "NaN",
    "Infinity",
    "[tru]",
    "nul",
    "\"abc",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\udc00\"",
    "\"\\ud800x\"",
    "\"a\tb\"",
    "\"\xc0\xaf\"",
    "\"\xf5\x80\x80\x80\"",
    "{} {}",
    "[1 2]",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":1,\"a\":2}",
    "/*c*/{}",
    "\xef\xbb\xbf{}",
    "{\"a\":}",
    "[,]",
    "\"\\",
};

START_TEST(test_json_strict)
{
    char err[200];
    for (size_t i = 0; i < sizeof json_valid / sizeof *json_valid; i++) {
        cg__json *v = NULL;
        cg_status st = cg__json_parse(json_valid[i], strlen(json_valid[i]), &v,
                                      err, sizeof err);
        ck_assert_msg(st == CG_OK, "%s rejected: %s", json_valid[i], err);
        cg__json_free(v);
    }
    for (size_t i = 0; i < sizeof json_invalid / sizeof *json_invalid; i++) {
        cg__json *v = NULL;
        cg_status st = cg__json_parse(json_invalid[i], strlen(json_invalid[i]),
                                      &v, err, sizeof err);
        ck_assert_msg(st == CG_ERR_VALUE, "%s accepted", json_invalid[i]);
        ck_assert_ptr_null(v);
        ck_assert(err[0] != '\0');
    }
    /* what the tree holds */
    const char *text = "{\"k\\u00e9\":[7, 18446744073709551616, -1, 2.5, "
                       "\"a\\u0000b\"]}";
    cg__json *v = NULL;
    tu_ok(cg__json_parse(text, strlen(text), &v, err, sizeof err));
    ck_assert_int_eq(v->type, CG__JSON_OBJECT);
    ck_assert_int_eq(v->n, 1);
    ck_assert_str_eq(v->keys[0], "k\xc3\xa9");
    const cg__json *a = cg__json_get(v, "k\xc3\xa9");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->n, 5);
    ck_assert(a->items[0].is_uint);
    ck_assert_uint_eq(a->items[0].uint_val, 7);
    ck_assert(!a->items[1].is_uint); /* 2^64 does not fit */
    ck_assert(!a->items[2].is_uint);
    ck_assert(!a->items[3].is_uint);
    ck_assert_int_eq(a->items[4].len, 3);
    ck_assert(memcmp(a->items[4].str, "a\0b", 3) == 0);
    cg__json_free(v);
    /* nesting is capped */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    ck_assert_int_eq(cg__json_parse(deep, 200, &v, err, sizeof err),
                     CG_ERR_VALUE);
    ck_assert_str_eq(err, "recursion limit exceeded at line 1 column 65");
    ck_assert_int_eq(cg__json_parse(deep + 100 - CG__JSON_MAX_DEPTH,
                                    2 * CG__JSON_MAX_DEPTH, &v, err,
                                    sizeof err),
                     CG_OK);
    cg__json_free(v);
    /* not NUL terminated: never reads past len */
    char *exact = malloc(3);
    memcpy(exact, "[1,", 3);
    ck_assert_int_eq(cg__json_parse(exact, 3, &v, err, sizeof err),
                     CG_ERR_VALUE);
    free(exact);
}
END_TEST

/* Random bytes and random token soups: the parser answers, never crashes
 * or leaks (the sanitizer build checks). */
START_TEST(test_json_fuzz)
{
    static const char *const tok[] = {
        "{", "}", "[", "]",    ",",    ":", "\"a\"", "\"",   "1",   "-",
        "0", ".", "e", "true", "null", " ", "\\u",   "d800", "\xe9"};
    rng_state = 42;
    char buf[64], err[200];
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        if (round % 2) {
            n = (size_t)(next_rand() % sizeof buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)(next_rand() >> 56);
        } else {
            int k = (int)(next_rand() % 12);
            for (int i = 0; i < k; i++) {
                const char *t = tok[next_rand() % (sizeof tok / sizeof *tok)];
                size_t l = strlen(t);
                if (n + l > sizeof buf)
                    break;
                memcpy(buf + n, t, l);
                n += l;
            }
        }
        cg__json *v = NULL;
        cg_status st = cg__json_parse(buf, n, &v, err, sizeof err);
        ck_assert(st == CG_OK || st == CG_ERR_VALUE);
        if (st == CG_OK)
            accepted++;
        cg__json_free(v);
    }
    ck_assert_int_gt(accepted, 0);
}
END_TEST

/* ======================================================================
 * Allocation failures
 * ====================================================================== */

static cg_status load_scenario(void *ctx)
{
    const char *path = ctx;
    cg_state_dict *sd = NULL;
    cg_status st = cg_safetensors_load(path, &sd);
    cg_state_dict_free(sd);
    return st;
}

static cg_status save_scenario(void *ctx)
{
    cg_state_dict *sd = ctx;
    return cg_safetensors_save(sd, build_path("st_alloc.safetensors"));
}

static cg_status module_load_scenario(void *ctx)
{
    cg_module *m = ctx;
    return cg_module_load_safetensors(
        m, tu_data_path("nn/safetensors/torch_f64.safetensors"), true);
}

START_TEST(test_alloc)
{
    char path[1100];
    snprintf(path, sizeof path, "%s",
             tu_data_path("nn/safetensors/torch_f32.safetensors"));
    ck_assert_int_gt(tu_alloc_sweep(load_scenario, path, "load"), 5);
    cg_state_dict *sd = NULL;
    tu_ok(cg_safetensors_load(path, &sd));
    tu_ok(cg_state_dict_set_number(sd, "lr", 0.1));
    tu_ok(cg_state_dict_set_none(sd, "foreach"));
    ck_assert_int_gt(tu_alloc_sweep(save_scenario, sd, "save"), 3);
    cg_state_dict_free(sd);
    cg_manual_seed(0);
    cg_module *m = make_model(CG_FLOAT64);
    cg_module_num_parameters(m); /* builds the parameter cache */
    ck_assert_int_gt(tu_alloc_sweep(module_load_scenario, m, "module load"), 5);
    cg_module_free(m);
}
END_TEST

Suite *safetensors_suite(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_loop_test(tc, test_roundtrip, 0, 2);
    tcase_add_test(tc, test_read_torch_file);
    tcase_add_test(tc, test_batchnorm_file);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("format");
    tcase_add_test(tc, test_format_empty_and_metadata);
    tcase_add_test(tc, test_metadata_numbers_exact);
    tcase_add_test(tc, test_dtypes_and_refusals);
    suite_add_tcase(s, tc);
    tc = tcase_create("optim");
    tcase_add_test(tc, test_optimizer_state);
    suite_add_tcase(s, tc);
    tc = tcase_create("corrupt");
    tcase_add_loop_test(tc, test_corrupt, 0,
                        (int)(sizeof corrupt_cases / sizeof *corrupt_cases));
    tcase_add_test(tc, test_truncated);
    suite_add_tcase(s, tc);
    tc = tcase_create("fuzz");
    tcase_add_test(tc, test_fuzz);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    tc = tcase_create("json");
    tcase_add_test(tc, test_json_strict);
    tcase_add_test(tc, test_json_fuzz);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc);
    tcase_set_timeout(tc, 300);
    suite_add_tcase(s, tc);
    return s;
}
