/* test_npy.c -- NumPy .npy interchange: loading files numpy wrote (every
 * dtype, versions 1.0/2.0/3.0, 0-d, empty, up to 16-d), saving byte for
 * byte as numpy 1.24 does (also from non-contiguous views), every
 * malformed-file error with its exact message, I/O errors, and failing
 * allocations. Fixtures: tests/data/npy/gen_npy.py. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A sentinel: a failing call must leave *out exactly as it was. */
#define UNTOUCHED ((cg_tensor *)(uintptr_t)0x5a5a5a5a)

/* ---- temp files --------------------------------------------------------- */

static char tmpdir[512];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/cgrad-npy-XXXXXX",
             base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (remove(p) != 0)
            rmdir(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

/* Path of a file in the test's temp dir (static buffer, one at a time). */
static const char *tmp_path(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file into a malloc'd buffer; *n gets its size. */
static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0, r;
    unsigned char *b = malloc(cap);
    ck_assert_ptr_nonnull(b);
    while ((r = fread(b + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            cap *= 2;
            b = realloc(b, cap);
            ck_assert_ptr_nonnull(b);
        }
    }
    fclose(f);
    *n = len;
    return b;
}

static void assert_same_file(const char *got, const char *ref)
{
    size_t n, m;
    unsigned char *a = read_bytes(got, &n), *b = read_bytes(ref, &m);
    ck_assert_msg(n == m, "%s is %zu bytes, %s is %zu", got, n, ref, m);
    /* memcmp first: a Check assert per byte (a message to the parent
     * process each) made the large files take seconds */
    if (memcmp(a, b, n) != 0) {
        size_t i = 0;
        while (a[i] == b[i])
            i++;
        ck_abort_msg("%s and %s differ at byte %zu", got, ref, i);
    }
    free(a);
    free(b);
}

/* A .npy file with a version 1.0 preamble around `header` (taken as is,
 * so it may be malformed), followed by `data`. */
static void write_npy(const char *path, const char *header, const void *data,
                      size_t data_len)
{
    size_t hl = strlen(header);
    size_t n = 10 + hl + data_len;
    unsigned char *b = malloc(n);
    ck_assert_ptr_nonnull(b);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memcpy(b + 10, header, hl);
    if (data_len)
        memcpy(b + 10 + hl, data, data_len);
    write_bytes(path, b, n);
    free(b);
}

/* ---- expected values (gen_npy.py's formulas) ---------------------------- */

static double value_re(int64_t i)
{
    return ((double)i - 2.5) * 0.75;
}

static double value_im(int64_t i)
{
    return i == 0 ? 0.0 : -0.125 * (double)i; /* numpy's 0j is +0.0 */
}

/* Asserts t holds the formula values, row-major, with shape `shape`. */
static void assert_formula(const cg_tensor *t, cg_dtype dt,
                           const int64_t *shape, int ndim, const char *what)
{
    ck_assert_msg(cg_tensor_dtype(t) == dt, "%s: dtype %s", what,
                  cg_dtype_name(cg_tensor_dtype(t)));
    tu_assert_shape(t, shape, ndim);
    ck_assert(cg_tensor_is_contiguous(t));
    int64_t n = cg_tensor_numel(t);
    bool cplx = cg_dtype_is_complex(dt);
    double *v = malloc((size_t)(n * 2 + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tu_ok(cg_tensor_to_doubles(t, v, n * 2));
    for (int64_t i = 0; i < n; i++) {
        double re = cplx ? v[2 * i] : v[i];
        ck_assert_msg(re == value_re(i), "%s: element %lld is %g, expected %g",
                      what, (long long)i, re, value_re(i));
        if (cplx)
            ck_assert_msg(v[2 * i + 1] == value_im(i),
                          "%s: element %lld has imaginary part %g, "
                          "expected %g",
                          what, (long long)i, v[2 * i + 1], value_im(i));
    }
    free(v);
}

/* The formula values as a new contiguous tensor. */
static cg_tensor *formula_tensor(cg_dtype dt, const int64_t *shape, int ndim)
{
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, ndim, dt, &t));
    int64_t n = cg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[CG_MAX_DIMS], rest = i;
        for (int d = ndim - 1; d >= 0; d--) {
            idx[d] = rest % shape[d];
            rest /= shape[d];
        }
        tu_ok(cg_tensor_set(t, idx, value_re(i),
                            cg_dtype_is_complex(dt) ? value_im(i) : 0.0));
    }
    return t;
}

static const struct {
    const char *tag;
    cg_dtype dt;
} dtypes[] = {
    {"f4", CG_FLOAT32},
    {"f8", CG_FLOAT64},
    {"c8", CG_COMPLEX64},
    {"c16", CG_COMPLEX128},
};

static cg_tensor *load_fixture(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "npy/%s", name);
    return tu_load(rel);
}

static void setup(void)
{
    make_tmpdir();
}

static void teardown(void)
{
    remove_tmpdir();
}

/* ---- load --------------------------------------------------------------- */

START_TEST(test_load_dtypes)
{
    char name[64];
    int64_t shape[] = {2, 3};
    snprintf(name, sizeof name, "%s_2x3.npy", dtypes[_i].tag);
    cg_tensor *t = load_fixture(name);
    assert_formula(t, dtypes[_i].dt, shape, 2, name);
    cg_tensor_release(t);

    snprintf(name, sizeof name, "%s_scalar.npy", dtypes[_i].tag);
    t = load_fixture(name);
    assert_formula(t, dtypes[_i].dt, NULL, 0, name);
    cg_tensor_release(t);

    int64_t empty[] = {2, 0, 3};
    snprintf(name, sizeof name, "%s_empty.npy", dtypes[_i].tag);
    t = load_fixture(name);
    assert_formula(t, dtypes[_i].dt, empty, 3, name);
    ck_assert_int_eq(cg_tensor_numel(t), 0);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_load_shapes)
{
    int64_t len0[] = {0};
    cg_tensor *t = load_fixture("f4_len0.npy");
    assert_formula(t, CG_FLOAT32, len0, 1, "f4_len0");
    cg_tensor_release(t);

    int64_t vec[] = {7};
    t = load_fixture("f8_vec7.npy");
    assert_formula(t, CG_FLOAT64, vec, 1, "f8_vec7");
    cg_tensor_release(t);

    int64_t s5[] = {2, 1, 3, 1, 2};
    t = load_fixture("f8_5d.npy");
    assert_formula(t, CG_FLOAT64, s5, 5, "f8_5d");
    cg_tensor_release(t);

    int64_t s6[] = {1, 2, 1, 2, 1, 3};
    t = load_fixture("c8_6d.npy");
    assert_formula(t, CG_COMPLEX64, s6, 6, "c8_6d");
    cg_tensor_release(t);

    int64_t s16[CG_MAX_DIMS];
    for (int d = 0; d < CG_MAX_DIMS; d++)
        s16[d] = d == CG_MAX_DIMS - 1 ? 2 : 1;
    t = load_fixture("f4_16d.npy");
    assert_formula(t, CG_FLOAT32, s16, CG_MAX_DIMS, "f4_16d");
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_load_versions)
{
    int64_t shape[] = {2, 3};
    cg_tensor *t = load_fixture("f4_2x3_v2.npy");
    assert_formula(t, CG_FLOAT32, shape, 2, "version 2.0");
    cg_tensor_release(t);
    t = load_fixture("c16_2x3_v3.npy");
    assert_formula(t, CG_COMPLEX128, shape, 2, "version 3.0");
    cg_tensor_release(t);
    t = load_fixture("f4_2x3_align16.npy"); /* numpy < 1.14's padding */
    assert_formula(t, CG_FLOAT32, shape, 2, "16-byte aligned header");
    cg_tensor_release(t);
}
END_TEST

static void assert_bits32(const cg_tensor *t, int64_t i, float want)
{
    float got = ((const float *)cg_tensor_data(t))[i];
    if (isnan(want))
        ck_assert_msg(isnan(got), "element %lld is not nan", (long long)i);
    else
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                      "element %lld is %a, expected %a", (long long)i,
                      (double)got, (double)want);
}

static void assert_bits64(const cg_tensor *t, int64_t i, double want)
{
    double got = ((const double *)cg_tensor_data(t))[i];
    if (isnan(want))
        ck_assert_msg(isnan(got), "element %lld is not nan", (long long)i);
    else
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                      "element %lld is %a, expected %a", (long long)i, got,
                      want);
}

START_TEST(test_load_special_values)
{
    cg_tensor *t = load_fixture("f4_special.npy");
    const float f4[] = {
        0.0f,   -0.0f,   INFINITY, -INFINITY, NAN,
        1e-45f, FLT_MAX, FLT_MIN,  0.1f,      (float)(-1.0 / 3.0)};
    ck_assert_int_eq(cg_tensor_numel(t), 10);
    for (int i = 0; i < 10; i++)
        assert_bits32(t, i, f4[i]);
    cg_tensor_release(t);

    t = load_fixture("f8_special.npy");
    const double f8[] = {0.0,    -0.0,    INFINITY, -INFINITY, NAN,
                         5e-324, DBL_MAX, DBL_MIN,  0.1,       -1.0 / 3.0};
    ck_assert_int_eq(cg_tensor_numel(t), 10);
    for (int i = 0; i < 10; i++)
        assert_bits64(t, i, f8[i]);
    cg_tensor_release(t);
}
END_TEST

/* Headers numpy would read that numpy does not write: other key orders,
 * double quotes, no trailing comma, more whitespace. */
START_TEST(test_load_header_variants)
{
    static const char *const headers[] = {
        "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f8'}\n",
        "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,3)}\n",
        ("{ 'descr' : '<f8' ,\t'fortran_order' : False , 'shape' : ( 2 , "
         "3 , ) , }   \n"),
        "{'descr': '<f8',\n 'fortran_order': False,\n 'shape': (2, 3)}\n",
        "  {'fortran_order':False,'shape':(+2,3,),'descr':'<f8',}\n",
    };
    double data[6];
    for (int i = 0; i < 6; i++)
        data[i] = value_re(i);
    int64_t shape[] = {2, 3};
    for (size_t k = 0; k < sizeof headers / sizeof headers[0]; k++) {
        write_npy(tmp_path("v.npy"), headers[k], data, sizeof data);
        cg_tensor *t = NULL;
        tu_ok(cg_load_npy(tmp_path("v.npy"), &t));
        assert_formula(t, CG_FLOAT64, shape, 2, headers[k]);
        cg_tensor_release(t);
    }
    /* shapes (), (0,), (1,) spelled in odd ways */
    write_npy(tmp_path("s.npy"),
              "{'descr':'<f4','fortran_order':False,'shape':( )}\n", data, 4);
    cg_tensor *t = NULL;
    tu_ok(cg_load_npy(tmp_path("s.npy"), &t));
    ck_assert_int_eq(cg_tensor_dim(t), 0);
    cg_tensor_release(t);
    /* the longest header cgrad reads: 65535 bytes, mostly padding */
    char *big = malloc(65536);
    ck_assert_ptr_nonnull(big);
    const char *dict = "{'descr': '<f8', 'fortran_order': False, "
                       "'shape': (2, 3), }";
    memset(big, ' ', 65535);
    memcpy(big, dict, strlen(dict));
    big[65534] = '\n';
    big[65535] = '\0';
    write_npy(tmp_path("big.npy"), big, data, sizeof data);
    free(big);
    tu_ok(cg_load_npy(tmp_path("big.npy"), &t));
    assert_formula(t, CG_FLOAT64, shape, 2, "65535-byte header");
    cg_tensor_release(t);
    write_npy(tmp_path("s.npy"),
              "{'descr':'<f4','fortran_order':False,'shape':(00, 1,)}\n", NULL,
              0);
    tu_ok(cg_load_npy(tmp_path("s.npy"), &t));
    int64_t s01[] = {0, 1};
    tu_assert_shape(t, s01, 2);
    cg_tensor_release(t);
}
END_TEST

/* Reading through a pipe: no size up front, so truncation and trailing
 * bytes are found while reading. */
typedef struct fifo_job {
    const char *path;
    const unsigned char *bytes;
    size_t n;
} fifo_job;

static void *fifo_writer(void *arg)
{
    fifo_job *job = arg;
    int fd = open(job->path, O_WRONLY);
    if (fd >= 0) {
        size_t done = 0;
        while (done < job->n) {
            ssize_t w = write(fd, job->bytes + done, job->n - done);
            if (w <= 0)
                break;
            done += (size_t)w;
        }
        close(fd);
    }
    return NULL;
}

static cg_status load_through_fifo(const unsigned char *bytes, size_t n,
                                   cg_tensor **out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", tmp_path("pipe"));
    unlink(path);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    fifo_job job = {path, bytes, n};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, fifo_writer, &job), 0);
    cg_status st = cg_load_npy(path, out);
    /* unblock the writer if the reader stopped early */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    pthread_join(th, NULL);
    if (fd >= 0)
        close(fd);
    return st;
}

START_TEST(test_load_fifo)
{
    size_t n;
    char ref[1024];
    snprintf(ref, sizeof ref, "%s", tu_data_path("npy/c8_2x3.npy"));
    unsigned char *b = read_bytes(ref, &n);
    cg_tensor *t = NULL;
    tu_ok(load_through_fifo(b, n, &t));
    int64_t shape[] = {2, 3};
    assert_formula(t, CG_COMPLEX64, shape, 2, "through a pipe");
    cg_tensor_release(t);

    char path[1024], msg[2048];
    snprintf(path, sizeof path, "%s", tmp_path("pipe"));
    t = UNTOUCHED;
    ck_assert_int_eq(load_through_fifo(b, n - 8, &t), CG_ERR_VALUE);
    snprintf(msg, sizeof msg,
             "cannot load '%s': the file is truncated: expected 48 bytes of "
             "data, found 40",
             path);
    ck_assert_str_eq(cg_last_error(), msg);
    ck_assert_ptr_eq(t, UNTOUCHED);

    unsigned char *longer = malloc(n + 3);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, b, n);
    memcpy(longer + n, "abc", 3);
    ck_assert_int_eq(load_through_fifo(longer, n + 3, &t), CG_ERR_VALUE);
    snprintf(msg, sizeof msg,
             "cannot load '%s': unexpected bytes after the data (expected 48 "
             "bytes of data, found more)",
             path);
    ck_assert_str_eq(cg_last_error(), msg);
    ck_assert_ptr_eq(t, UNTOUCHED);
    free(longer);
    free(b);
}
END_TEST

/* ---- save --------------------------------------------------------------- */

/* Loads the numpy-written fixture, saves it, and compares the bytes. */
static void resave_and_compare(const char *name)
{
    cg_tensor *t = load_fixture(name);
    tu_ok(cg_save_npy(t, tmp_path(name)));
    char ref[1024];
    snprintf(ref, sizeof ref, "npy/%s", name);
    assert_same_file(tmp_path(name), tu_data_path(ref));
    cg_tensor *back = NULL;
    tu_ok(cg_load_npy(tmp_path(name), &back));
    tu_assert_bitwise(back, t, name);
    cg_tensor_release(back);
    cg_tensor_release(t);
}

START_TEST(test_save_matches_numpy)
{
    static const char *const names[] = {
        "f4_2x3.npy",    "f8_2x3.npy",     "c8_2x3.npy",     "c16_2x3.npy",
        "f4_scalar.npy", "f8_scalar.npy",  "c8_scalar.npy",  "c16_scalar.npy",
        "f4_empty.npy",  "f8_empty.npy",   "c8_empty.npy",   "c16_empty.npy",
        "f4_len0.npy",   "f8_vec7.npy",    "f8_5d.npy",      "c8_6d.npy",
        "f4_16d.npy",    "f4_special.npy", "f8_special.npy", "f8_3x4.npy",
    };
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        resave_and_compare(names[k]);
}
END_TEST

/* Tensors built in C (not loaded) save to the bytes numpy wrote. */
START_TEST(test_save_from_scratch)
{
    int64_t shape[] = {2, 3};
    char name[64], ref[128];
    for (size_t k = 0; k < sizeof dtypes / sizeof dtypes[0]; k++) {
        cg_tensor *t = formula_tensor(dtypes[k].dt, shape, 2);
        snprintf(name, sizeof name, "%s_2x3.npy", dtypes[k].tag);
        tu_ok(cg_save_npy(t, tmp_path(name)));
        snprintf(ref, sizeof ref, "npy/%s", name);
        assert_same_file(tmp_path(name), tu_data_path(ref));
        cg_tensor_release(t);
    }
    /* overwriting a longer file leaves exactly the new contents */
    cg_tensor *t = formula_tensor(CG_FLOAT64, shape, 2);
    unsigned char junk[4096];
    memset(junk, 'x', sizeof junk);
    write_bytes(tmp_path("over.npy"), junk, sizeof junk);
    tu_ok(cg_save_npy(t, tmp_path("over.npy")));
    assert_same_file(tmp_path("over.npy"), tu_data_path("npy/f8_2x3.npy"));
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_save_views)
{
    /* the transpose of a (3, 4) array, saved as numpy saves
     * np.ascontiguousarray(a.T) */
    cg_tensor *a = load_fixture("f8_3x4.npy"), *v = NULL;
    tu_ok(cg_tensor_transpose(a, 0, 1, &v));
    ck_assert(!cg_tensor_is_contiguous(v));
    tu_ok(cg_save_npy(v, tmp_path("t.npy")));
    assert_same_file(tmp_path("t.npy"), tu_data_path("npy/f8_3x4_T.npy"));
    cg_tensor_release(v);

    /* a[::2, 1::2]: a strided slice with an offset */
    cg_tensor *rows = NULL;
    tu_ok(cg_tensor_slice(a, 0, 0, INT64_MAX, 2, &rows));
    tu_ok(cg_tensor_slice(rows, 1, 1, INT64_MAX, 2, &v));
    tu_ok(cg_save_npy(v, tmp_path("s.npy")));
    assert_same_file(tmp_path("s.npy"), tu_data_path("npy/f8_3x4_slice.npy"));
    cg_tensor_release(v);
    cg_tensor_release(rows);
    cg_tensor_release(a);

    /* a broadcast row (stride 0), complex */
    int64_t row_shape[] = {1, 3}, big[] = {4, 3};
    cg_tensor *row = formula_tensor(CG_COMPLEX64, row_shape, 2);
    tu_ok(cg_tensor_expand(row, big, 2, &v));
    tu_ok(cg_save_npy(v, tmp_path("e.npy")));
    assert_same_file(tmp_path("e.npy"), tu_data_path("npy/c8_expand_4x3.npy"));
    cg_tensor_release(v);
    cg_tensor_release(row);
}
END_TEST

/* 0-d and empty views with an offset into their storage. */
START_TEST(test_save_small_views)
{
    cg_tensor *vec = load_fixture("f8_vec7.npy"), *v = NULL, *back = NULL;
    tu_ok(cg_tensor_select(vec, 0, 2, &v));
    ck_assert_int_eq(cg_tensor_dim(v), 0);
    tu_ok(cg_save_npy(v, tmp_path("0d.npy")));
    tu_ok(cg_load_npy(tmp_path("0d.npy"), &back));
    ck_assert_int_eq(cg_tensor_dim(back), 0);
    double re = 0;
    tu_ok(cg_tensor_item(back, &re, NULL));
    ck_assert(re == value_re(2));
    cg_tensor_release(back);
    cg_tensor_release(v);
    cg_tensor_release(vec);

    int64_t five[] = {5};
    cg_tensor *f4 = formula_tensor(CG_FLOAT32, five, 1);
    tu_ok(cg_tensor_narrow(f4, 0, 3, 0, &v));
    tu_ok(cg_save_npy(v, tmp_path("len0.npy")));
    assert_same_file(tmp_path("len0.npy"), tu_data_path("npy/f4_len0.npy"));
    cg_tensor_release(v);
    cg_tensor_release(f4);
}
END_TEST

/* A non-contiguous tensor larger than the save buffer, every dtype:
 * load(save(x)) equals x.contiguous(). */
START_TEST(test_save_large_roundtrip)
{
    int64_t shape[] = {150, 301};
    cg_tensor *x = NULL, *r = NULL, *v = NULL, *c = NULL, *back = NULL;
    tu_ok(cg_arange(150 * 301, dtypes[_i].dt, &x));
    tu_ok(cg_tensor_reshape(x, shape, 2, &r));
    tu_ok(cg_tensor_transpose(r, 0, 1, &v));
    tu_ok(cg_tensor_contiguous(v, &c));
    tu_ok(cg_save_npy(v, tmp_path("big.npy")));
    tu_ok(cg_load_npy(tmp_path("big.npy"), &back));
    tu_assert_bitwise(back, c, "transposed 150x301");
    cg_tensor *back2 = NULL;
    tu_ok(cg_save_npy(c, tmp_path("big2.npy")));
    assert_same_file(tmp_path("big.npy"), tmp_path("big2.npy"));
    tu_ok(cg_load_npy(tmp_path("big2.npy"), &back2));
    tu_assert_bitwise(back2, c, "contiguous 301x150");
    cg_tensor_release(back2);
    cg_tensor_release(back);
    cg_tensor_release(c);
    cg_tensor_release(v);
    cg_tensor_release(r);
    cg_tensor_release(x);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

/* Malformed files: the bytes, and the message after "cannot load '<path>': ".
 * RAW(s) is the file as written. HDR(h) puts a version 1.0 preamble before
 * h, whose first two bytes ("\x3c\x00") stand for the header length:
 * write_bad_file replaces them with the length up to the first '\n'. */
typedef struct bad_file {
    const char *bytes; /* raw file content */
    size_t len;
    const char *msg;
} bad_file;

#define RAW(s) s, sizeof(s) - 1
#define HDR(h) "\x93NUMPY\x01\x00" h, sizeof(h) - 1 + 8

static const bad_file bad_files[] = {
    /* 0 */ {RAW(""), "the file is empty"},
    {RAW("PK\x03\x04\x14\x00\x08\x00"),
     "not a .npy file: the magic string is b'PK\\x03\\x04\\x14\\x00', "
     "expected b'\\x93NUMPY'"},
    {RAW("\x93NUMPX\x01\x00\x00\x00"),
     "not a .npy file: the magic string is b'\\x93NUMPX', expected "
     "b'\\x93NUMPY'"},
    {RAW("{'descr'"),
     "not a .npy file: the magic string is b\"{'desc\", expected "
     "b'\\x93NUMPY'"},
    {RAW("\x93NUM"),
     "the file is truncated: expected a 10-byte preamble, found 4 bytes"},
    /* 5 */
    {RAW("\x93NUMPY\x01\x00\x46"),
     "the file is truncated: expected a 10-byte preamble, found 9 bytes"},
    {RAW("\x93NUMPY\x02\x00\x46\x00\x00"),
     "the file is truncated: expected a 12-byte preamble, found 11 bytes"},
    {RAW("\x93NUMPY\x04\x00\x46\x00"),
     "unsupported .npy format version 4.0 (cgrad reads 1.0, 2.0 and 3.0)"},
    {RAW("\x93NUMPY\x01\x01\x46\x00"),
     "unsupported .npy format version 1.1 (cgrad reads 1.0, 2.0 and 3.0)"},
    {RAW("\x93NUMPY\x00\x00\x46\x00"),
     "unsupported .npy format version 0.0 (cgrad reads 1.0, 2.0 and 3.0)"},
    /* 10 */
    {RAW("\x93NUMPY\x02\x00\x70\x11\x01\x00"),
     "the header is 70000 bytes long, but cgrad reads headers of at most "
     "65535 bytes"},
    {RAW("\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', "),
     "the file is truncated: expected a 118-byte header, found 17 bytes"},
    {RAW("\x93NUMPY\x01\x00\x00\x00"),
     "the header is not terminated by a newline"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), }"),
     "the header is not terminated by a newline"},
    {HDR("\x3c\x00['descr', '<f4', 'fortran_order', False, 'shape', ()]\n"),
     "malformed header at byte 10: expected '{'"},
    /* 15 */
    {HDR("\x3c\x00{'descr' '<f4', 'fortran_order': False, "
         "'shape': ()}\n"),
     "malformed header at byte 19: expected ':' after a key"},
    {HDR("\x3c\x00{'descr': '<f4' 'fortran_order': False, 'shape': ()}\n"),
     "malformed header at byte 26: expected ',' or '}'"},
    {HDR("\x3c\x00{descr: '<f4', 'fortran_order': False, 'shape': ()}\n"),
     "malformed header at byte 11: expected a quoted key or '}'"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': ()\n"),
     "malformed header at byte 63: unexpected end of header"},
    {HDR("\x3c\x00{'descr': '<f4, 'fortran_order': False, 'shape': ()}\n"),
     "malformed header at byte 27: expected ',' or '}'"},
    /* 20 */
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': ()} x\n"),
     "malformed header at byte 64: unexpected text after '}'"},
    {HDR("\x3c\x00{'descr': '<f\\x34', 'fortran_order': False, "
         "'shape': ()}\n"),
     "malformed header at byte 23: escape sequences are not supported"},
    {HDR("\x3c\x00{'descr': '<f4\n', 'fortran_order': False, 'shape': ()}\n"),
     "malformed header at byte 24: unterminated string"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), "
         "'foo': 1}\n"),
     "header has an unexpected key 'foo' (expected 'descr', "
     "'fortran_order' and 'shape')"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (), "
         "'shape': ()}\n"),
     "header has the key 'shape' twice"},
    /* 25 */
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False}\n"),
     "header has no 'shape' key"},
    {HDR("\x3c\x00{'shape': (), 'fortran_order': False}\n"),
     "header has no 'descr' key"},
    {HDR("\x3c\x00{}\n"), "header has no 'descr' key"},
    {HDR("\x3c\x00{'descr': '>f4', 'fortran_order': False, 'shape': ()}\n"),
     "unsupported dtype '>f4' (cgrad reads little-endian '<f4', '<f8', "
     "'<c8', '<c16')"},
    {HDR("\x3c\x00{'descr': '|f4', 'fortran_order': False, 'shape': ()}\n"),
     "unsupported dtype '|f4' (cgrad reads little-endian '<f4', '<f8', "
     "'<c8', '<c16')"},
    /* 30 */
    {HDR("\x3c\x00{'descr': '<i8', 'fortran_order': False, "
         "'shape': ()}\n"),
     "unsupported dtype '<i8' (cgrad reads little-endian '<f4', '<f8', "
     "'<c8', '<c16')"},
    {HDR("\x3c\x00{'descr': 'f4', 'fortran_order': False, 'shape': ()}\n"),
     "unsupported dtype 'f4' (cgrad reads little-endian '<f4', '<f8', "
     "'<c8', '<c16')"},
    {HDR("\x3c\x00{'descr': [('a', '<f4')], 'fortran_order': False, "
         "'shape': ()}\n"),
     "unsupported dtype: structured arrays are not supported"},
    {HDR("\x3c\x00{'descr': 4, 'fortran_order': False, 'shape': ()}\n"),
     "malformed header at byte 20: expected a quoted string"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3)}\n"),
     "Fortran-ordered arrays are not supported"},
    /* 35 */
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': 0, "
         "'shape': ()}\n"),
     "malformed header at byte 44: 'fortran_order' must be True or False"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': Falsey, "
         "'shape': ()}\n"),
     "malformed header at byte 44: 'fortran_order' must be True or False"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (5)}\n"),
     "malformed header at byte 62: 'shape' is not a tuple (a 1-d shape is "
     "written (n,))"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': [2, 3]}\n"),
     "malformed header at byte 60: 'shape' must be a tuple of integers"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (2.5,)}\n"),
     "malformed header at byte 61: expected an integer"},
    /* 40 */
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (01,)}\n"),
     "malformed header at byte 61: expected an integer (leading zeros are "
     "not allowed)"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (True,)}\n"),
     "malformed header at byte 61: expected an integer"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (2 3)}\n"),
     "malformed header at byte 63: expected ',' or ')' in 'shape'"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (2, -1)}\n"),
     "the shape has a negative dimension -1"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, "
         "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}\n"),
     "the shape has 17 dimensions, but cgrad tensors have at most 16"},
    /* 45 */
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (4294967296, 4294967296)}\n"),
     "the shape is too large: its size in bytes overflows 64 bits"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (0, 99999999999999999999)}\n"),
     "the shape is too large: its size in bytes overflows 64 bits"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (2, 3)}\n"
         "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"),
     "the file is truncated: expected 24 bytes of data, found 20"},
    {HDR("\x3c\x00{'descr': '<f4', 'fortran_order': False, "
         "'shape': (1000000000000,)}\n"),
     "the file is truncated: expected 4000000000000 bytes of data, found "
     "0"},
    {HDR("\x3c\x00{'descr': '<c8', 'fortran_order': False, "
         "'shape': (1,)}\n"
         "\0\0\0\0\0\0\0\0\0\0\0\0"),
     "4 unexpected bytes after the data (expected 8 bytes of data, found "
     "12)"},
    /* 50 */
    {HDR("\x3c\x00{'descr': '<c8', 'fortran_order': False, "
         "'shape': (0,)}\n"
         "\0"),
     "1 unexpected bytes after the data (expected 0 bytes of data, found "
     "1)"},
};

/* Where the header HDR built ends: after its first '\n'. */
static size_t header_field_end(const bad_file *b)
{
    for (size_t i = 10; i < b->len; i++)
        if (b->bytes[i] == '\n')
            return i + 1;
    return b->len;
}

/* Writes bad_files[k] to the temp dir; cases built with HDR get their
 * true header length. */
static void write_bad_file(size_t k)
{
    const bad_file *b = &bad_files[k];
    unsigned char *bytes = malloc(b->len + 1);
    ck_assert_ptr_nonnull(bytes);
    memcpy(bytes, b->bytes, b->len);
    if (b->len >= 10 && memcmp(bytes, "\x93NUMPY\x01\x00\x3c\x00", 10) == 0) {
        size_t hl = header_field_end(b) - 10;
        bytes[8] = (unsigned char)(hl & 0xff);
        bytes[9] = (unsigned char)(hl >> 8);
    }
    write_bytes(tmp_path("bad.npy"), bytes, b->len);
    free(bytes);
}

START_TEST(test_malformed_files)
{
    const bad_file *b = &bad_files[_i];
    write_bad_file((size_t)_i);
    cg_tensor *out = UNTOUCHED;
    char msg[2048];
    snprintf(msg, sizeof msg, "cannot load '%s': %s", tmp_path("bad.npy"),
             b->msg);
    tu_fails(cg_load_npy(tmp_path("bad.npy"), &out), CG_ERR_VALUE, msg);
    ck_assert_ptr_eq(out, UNTOUCHED);
}
END_TEST

/* The lowest free descriptor, to prove that nothing stays open. */
static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    close(fd);
    return fd;
}

START_TEST(test_no_descriptor_leaks)
{
    int before = lowest_free_fd();
    for (size_t k = 0; k < sizeof bad_files / sizeof bad_files[0]; k++) {
        write_bad_file(k);
        cg_tensor *out = UNTOUCHED;
        ck_assert_int_ne(cg_load_npy(tmp_path("bad.npy"), &out), CG_OK);
        ck_assert_ptr_eq(out, UNTOUCHED);
    }
    cg_tensor *out = UNTOUCHED;
    ck_assert_int_eq(cg_load_npy(tmpdir, &out), CG_ERR_IO);
    cg_tensor *t = load_fixture("f4_2x3.npy");
    tu_ok(cg_save_npy(t, tmp_path("ok.npy")));
    if (access("/dev/full", W_OK) == 0)
        ck_assert_int_eq(cg_save_npy(t, "/dev/full"), CG_ERR_IO);
    ck_assert_int_eq(cg_save_npy(t, tmpdir), CG_ERR_IO);
    cg_tensor_release(t);
    ck_assert_int_eq(lowest_free_fd(), before);
}
END_TEST

static void expect_io(cg_status st, int err, const char *path)
{
    char msg[2048];
    snprintf(msg, sizeof msg, "[Errno %d] %s: '%s'", err, strerror(err), path);
    ck_assert_msg(st == CG_ERR_IO, "expected OSError, got %s (%s)",
                  cg_status_name(st), cg_last_error());
    ck_assert_str_eq(cg_last_error(), msg);
    ck_assert_str_eq(cg_status_name(st), "OSError");
}

START_TEST(test_io_errors)
{
    cg_tensor *out = UNTOUCHED;
    expect_io(cg_load_npy(tmp_path("missing.npy"), &out), ENOENT,
              tmp_path("missing.npy"));
    ck_assert_ptr_eq(out, UNTOUCHED);
    expect_io(cg_load_npy(tmpdir, &out), EISDIR, tmpdir);
    ck_assert_ptr_eq(out, UNTOUCHED);

    cg_tensor *t = load_fixture("f4_2x3.npy");
    expect_io(cg_save_npy(t, tmp_path("no/such/dir.npy")), ENOENT,
              tmp_path("no/such/dir.npy"));
    expect_io(cg_save_npy(t, tmpdir), EISDIR, tmpdir);
    /* a write error: the device is full */
    if (access("/dev/full", W_OK) == 0)
        expect_io(cg_save_npy(t, "/dev/full"), ENOSPC, "/dev/full");
    cg_tensor_release(t);

    /* Python's repr of an awkward name */
    out = UNTOUCHED;
    cg_status st = cg_load_npy("/nonexistent/it's\ta\\test.npy", &out);
    ck_assert_int_eq(st, CG_ERR_IO);
    char msg[256];
    snprintf(msg, sizeof msg,
             "[Errno %d] %s: \"/nonexistent/it's\\ta\\\\"
             "test.npy\"",
             ENOENT, strerror(ENOENT));
    ck_assert_str_eq(cg_last_error(), msg);
    ck_assert_ptr_eq(out, UNTOUCHED);
}
END_TEST

START_TEST(test_null_args)
{
    cg_tensor *out = UNTOUCHED;
    tu_fails(cg_load_npy(NULL, &out), CG_ERR_MISUSE, "path must not be NULL");
    ck_assert_ptr_eq(out, UNTOUCHED);
    tu_fails(cg_load_npy(tu_data_path("npy/f4_2x3.npy"), NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_save_npy(NULL, tmp_path("x.npy")), CG_ERR_MISUSE,
             "tensor must not be NULL");
    cg_tensor *t = load_fixture("f4_2x3.npy");
    tu_fails(cg_save_npy(t, NULL), CG_ERR_MISUSE, "path must not be NULL");
    cg_tensor_release(t);
    ck_assert_int_eq(access(tmp_path("x.npy"), F_OK), -1);
}
END_TEST

/* ---- alloc -------------------------------------------------------------- */

static cg_status load_save_scenario(void *ctx)
{
    (void)ctx;
    cg_tensor *a = NULL, *b = NULL, *v = NULL;
    cg_status st = cg_load_npy(tu_data_path("npy/c16_2x3.npy"), &a);
    if (st == CG_OK)
        st = cg_load_npy(tu_data_path("npy/f8_5d.npy"), &b);
    if (st == CG_OK)
        st = cg_tensor_transpose(a, 0, 1, &v);
    if (st == CG_OK)
        st = cg_save_npy(v, tmp_path("alloc.npy"));
    if (st == CG_OK)
        st = cg_save_npy(b, tmp_path("alloc2.npy"));
    cg_tensor_release(v);
    cg_tensor_release(b);
    cg_tensor_release(a);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(load_save_scenario, NULL, "load + save");
    ck_assert_int_gt(n, 4);
}
END_TEST

Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    int ndt = (int)(sizeof dtypes / sizeof dtypes[0]);
    TCase *tc = tcase_create("load");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_load_dtypes, 0, ndt);
    tcase_add_test(tc, test_load_shapes);
    tcase_add_test(tc, test_load_versions);
    tcase_add_test(tc, test_load_special_values);
    tcase_add_test(tc, test_load_header_variants);
    tcase_add_test(tc, test_load_fifo);
    suite_add_tcase(s, tc);
    tc = tcase_create("save");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_save_matches_numpy);
    tcase_add_test(tc, test_save_from_scratch);
    tcase_add_test(tc, test_save_views);
    tcase_add_test(tc, test_save_small_views);
    tcase_add_loop_test(tc, test_save_large_roundtrip, 0, ndt);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_malformed_files, 0,
                        (int)(sizeof bad_files / sizeof bad_files[0]));
    tcase_add_test(tc, test_no_descriptor_leaks);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_null_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
