/* test_rng.c -- the random number generator (core/rng.c) against PyTorch
 * 1.13: the MT19937 engine, uniform_ / normal_ / rand / randn bit for bit,
 * ConvTranspose3d's initialisation streams of the golden cases, errors and
 * threads.
 *
 * TCases:
 *   engine   known MT19937 outputs, random64 word order, seed wrapping,
 *            initial_seed, the default generator
 *   golden   tests/data/golden/cases.tsv: weight, bias, input, grad_output
 *            of every case regenerated from its seed alone
 *   torch    tests/data/rng/cases.tsv (gen_rng.py): every recorded call,
 *            replayed on the default generator and on a private one
 *            (including the rare inputs where the AVX2 sincos's fused
 *            range reduction shows)
 *   errors   PyTorch's messages; tensor, version and generator untouched
 *   threads  private generators in threads give the sequential streams; a
 *            shared generator hands out whole fills
 */
#include "testutil.h"
#include "tensor_internal.h" /* strided views and version counters */

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SEED UINT64_C(67280421310721)

/* ======================================================================
 * Tab-separated tables (a header line, then rows)
 * ====================================================================== */

typedef struct table {
    char *text; /* the file, split in place */
    int ncols;
    char **head; /* ncols column names */
    int nrows;
    char **cells; /* nrows * ncols */
} table;

/* The whole file as a NUL-terminated string, or NULL. tu_read_text would
 * do, but it uses Check's macros, which only work inside a test. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    char *s = malloc(cap);
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *bigger = realloc(s, cap *= 2);
            if (!bigger) {
                free(s);
                s = NULL;
            }
            s = bigger;
        }
    }
    fclose(f);
    if (s)
        s[n] = '\0';
    return s;
}

/* Why the last table_load failed (reported by the tests that need it:
 * Check's asserts cannot run while the suite is being built). */
static char table_problem[512];

/* Loads a table; false (with table_problem set) when the file is missing
 * or malformed. */
static bool table_load(const char *path, table *t)
{
    memset(t, 0, sizeof *t);
    t->text = slurp(path);
    if (!t->text) {
        snprintf(table_problem, sizeof table_problem, "cannot read %s", path);
        return false;
    }
    int nlines = 1;
    for (char *p = t->text; *p; p++)
        nlines += *p == '\n';
    char **lines = malloc((size_t)nlines * sizeof *lines);
    char *head[64];
    int n = lines ? tu_split(t->text, '\n', lines, nlines) : 0;
    while (n > 0 && lines[n - 1][0] == '\0')
        n--;
    if (n > 0)
        t->ncols = tu_split(lines[0], '\t', head, 64);
    t->head = malloc((size_t)(t->ncols ? t->ncols : 1) * sizeof *t->head);
    t->cells = malloc((size_t)(n > 1 ? n - 1 : 1) *
                      (size_t)(t->ncols ? t->ncols : 1) * sizeof *t->cells);
    if (n == 0 || !t->head || !t->cells) {
        snprintf(table_problem, sizeof table_problem, "%s: empty or no memory",
                 path);
        free(lines);
        return false;
    }
    memcpy(t->head, head, (size_t)t->ncols * sizeof *head);
    t->nrows = n - 1;
    for (int r = 0; r < t->nrows; r++) {
        int got = tu_split(lines[r + 1], '\t', t->cells + (size_t)r * t->ncols,
                           t->ncols);
        if (got != t->ncols) {
            snprintf(table_problem, sizeof table_problem,
                     "%s: line %d has %d fields, not %d", path, r + 2, got,
                     t->ncols);
            free(lines);
            return false;
        }
    }
    free(lines);
    return true;
}

static const char *cell(const table *t, int row, const char *col)
{
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->head[c], col) == 0)
            return t->cells[(size_t)row * t->ncols + c];
    ck_abort_msg("no column %s", col);
    return NULL;
}

static long long cell_ll(const table *t, int row, const char *col)
{
    return strtoll(cell(t, row, col), NULL, 10);
}

/* A seed as Python writes it: may be negative (wraps modulo 2**64) or
 * above 2**63. */
static uint64_t parse_seed(const char *s)
{
    if (s[0] == '-')
        return (uint64_t)strtoll(s, NULL, 10);
    return (uint64_t)strtoull(s, NULL, 10);
}

/* "2,3,4" -> {2, 3, 4}; "-" is a 0-dim shape. Returns ndim. */
static int parse_shape(const char *s, int64_t *shape)
{
    if (strcmp(s, "-") == 0)
        return 0;
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        shape[n++] = strtoll(p, &end, 10);
        if (*end != ',')
            break;
        p = end + 1;
    }
    return n;
}

static cg_dtype parse_dtype(const char *s)
{
    for (int d = 0; d < CG_DTYPE_COUNT; d++)
        if (strcmp(s, cg_dtype_name((cg_dtype)d)) == 0)
            return (cg_dtype)d;
    ck_abort_msg("unknown dtype %s", s);
    return CG_FLOAT32;
}

/* ======================================================================
 * Bitwise comparison of raw element bytes
 * ====================================================================== */

/* Compares n elements of dtype dt at a and b byte for byte; on a
 * mismatch names the first differing real value in hex-float. */
static void assert_same_bits(const void *got, const void *want, int64_t n,
                             cg_dtype dt, const char *what)
{
    size_t bytes = (size_t)n * cg_dtype_size(dt);
    if (bytes == 0 || memcmp(got, want, bytes) == 0)
        return;
    bool f32 = cg_dtype_to_real(dt) == CG_FLOAT32;
    int64_t reals = n * (cg_dtype_is_complex(dt) ? 2 : 1);
    for (int64_t i = 0; i < reals; i++) {
        double a, b;
        if (f32) {
            a = ((const float *)got)[i];
            b = ((const float *)want)[i];
        } else {
            a = ((const double *)got)[i];
            b = ((const double *)want)[i];
        }
        size_t es = f32 ? 4 : 8;
        if (memcmp((const char *)got + (size_t)i * es,
                   (const char *)want + (size_t)i * es, es) != 0)
            ck_abort_msg("%s: real value %lld of %lld is %a (%.9g), PyTorch "
                         "gives %a (%.9g)",
                         what, (long long)i, (long long)reals, a, a, b, b);
    }
}

/* ======================================================================
 * engine
 * ====================================================================== */

static cg_generator *new_gen(uint64_t seed)
{
    cg_generator *g = NULL;
    tu_ok(cg_generator_new(seed, &g));
    ck_assert_ptr_nonnull(g);
    return g;
}

START_TEST(test_mt19937_known_outputs)
{
    /* std::mt19937 with its default seed 5489: the first output, and the
     * 10000th (the C++ standard's check value). */
    cg_generator *g = new_gen(5489);
    ck_assert_uint_eq(cg_generator_random(g), 3499211612u);
    for (int i = 2; i < 10000; i++)
        cg_generator_random(g);
    ck_assert_uint_eq(cg_generator_random(g), 4123659995u);
    cg_generator_free(g);
}
END_TEST

START_TEST(test_random64_word_order)
{
    cg_generator *a = new_gen(1234), *b = new_gen(1234);
    for (int i = 0; i < 1000; i++) { /* crosses a twist (624 words) */
        uint64_t hi = cg_generator_random(b);
        uint64_t lo = cg_generator_random(b);
        ck_assert_uint_eq(cg_generator_random64(a), (hi << 32) | lo);
    }
    cg_generator_free(a);
    cg_generator_free(b);
}
END_TEST

START_TEST(test_seed_low_32_bits)
{
    uint64_t big = (UINT64_C(1) << 32) + 5;
    cg_generator *a = new_gen(big), *b = new_gen(5);
    for (int i = 0; i < 2000; i++)
        ck_assert_uint_eq(cg_generator_random(a), cg_generator_random(b));
    /* initial_seed keeps all 64 bits */
    ck_assert_uint_eq(cg_generator_initial_seed(a), big);
    ck_assert_uint_eq(cg_generator_initial_seed(b), 5);
    cg_generator_free(a);
    cg_generator_free(b);
}
END_TEST

START_TEST(test_manual_seed_minus_one)
{
    /* torch.manual_seed(-1) is the seed 18446744073709551615 */
    cg_manual_seed((uint64_t)-1);
    ck_assert_uint_eq(cg_initial_seed(), UINT64_C(18446744073709551615));
    cg_generator *g = new_gen(UINT64_C(18446744073709551615));
    cg_generator *d = cg_default_generator();
    for (int i = 0; i < 700; i++)
        ck_assert_uint_eq(cg_generator_random(d), cg_generator_random(g));
    cg_generator_free(g);
}
END_TEST

START_TEST(test_initial_seed)
{
    cg_generator *g = new_gen(123);
    ck_assert_uint_eq(cg_generator_initial_seed(g), 123);
    cg_generator_random64(g); /* drawing does not change it */
    ck_assert_uint_eq(cg_generator_initial_seed(g), 123);
    cg_generator_manual_seed(g, 456);
    ck_assert_uint_eq(cg_generator_initial_seed(g), 456);
    cg_generator *h = new_gen(456);
    ck_assert_uint_eq(cg_generator_random(g), cg_generator_random(h));
    cg_generator_free(g);
    cg_generator_free(h);

    cg_manual_seed(99);
    ck_assert_uint_eq(cg_initial_seed(), 99);
    ck_assert_uint_eq(cg_generator_initial_seed(cg_default_generator()), 99);
    /* the default generator is borrowed: freeing it is a no-op */
    cg_generator_free(cg_default_generator());
    cg_generator_free(NULL);
    ck_assert_uint_eq(cg_initial_seed(), 99);
}
END_TEST

START_TEST(test_default_generator_start)
{
    /* Only meaningful in a fresh process: with CK_FORK=no an earlier test
     * may already have seeded or drawn from the default generator. */
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0)
        return;
    ck_assert_uint_eq(cg_initial_seed(), DEFAULT_SEED);
    cg_generator *g = new_gen(DEFAULT_SEED);
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(cg_generator_random(cg_default_generator()),
                          cg_generator_random(g));
    cg_generator_free(g);
}
END_TEST

START_TEST(test_manual_seed_clears_cache)
{
    /* randn(1) leaves the sine sample cached; reseeding must drop it, so
     * the second randn(1) repeats the first. */
    int64_t one = 1;
    cg_tensor *a = NULL, *b = NULL;
    cg_manual_seed(4);
    tu_ok(cg_randn(&one, 1, CG_FLOAT64, NULL, &a));
    cg_manual_seed(4);
    tu_ok(cg_randn(&one, 1, CG_FLOAT64, NULL, &b));
    assert_same_bits(cg_tensor_data(a), cg_tensor_data(b), 1, CG_FLOAT64,
                     "randn(1) after reseeding");
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

START_TEST(test_kaiming_bound_constants)
{
    /* CONV_TRANSPOSE3D.md 6.1: sqrt(5)**2 is 5.000000000000001 and the
     * bound for fan_in 3 is one ulp below 1/sqrt(3). */
    double s5 = sqrt(5.0);
    ck_assert(s5 * s5 == 5.000000000000001);
    ck_assert(pow(s5, 2.0) == s5 * s5);
    double gain = sqrt(2.0 / (1 + s5 * s5));
    double bound = sqrt(3.0) * (gain / sqrt(3.0));
    ck_assert(bound == 0.5773502691896257);
    ck_assert(1 / sqrt(3.0) == 0.5773502691896258);
}
END_TEST

/* ======================================================================
 * golden: ConvTranspose3d cases regenerated from their seeds
 * ====================================================================== */

static table golden;
static bool golden_loaded;
static char golden_problem[512];

static void check_golden_part(const char *name, const char *part,
                              const cg_tensor *got)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/%s/%s.npy", name, part);
    cg_tensor *want = tu_load(rel);
    char what[600];
    snprintf(what, sizeof what, "%s %s", name, part);
    tu_assert_bitwise(got, want, what);
    ck_assert(cg_tensor_is_contiguous(want));
    assert_same_bits(cg_tensor_data(got), cg_tensor_data(want),
                     cg_tensor_numel(want), cg_tensor_dtype(want), what);
    cg_tensor_release(want);
}

START_TEST(test_golden_case)
{
    ck_assert_msg(golden_loaded, "%s", golden_problem);
    const table *t = &golden;
    const char *name = cell(t, _i, "name");
    cg_dtype dt = parse_dtype(cell(t, _i, "dtype"));
    int64_t cin = cell_ll(t, _i, "in_channels");
    int64_t cout = cell_ll(t, _i, "out_channels");
    int64_t groups = cell_ll(t, _i, "groups");
    int64_t k[3];
    ck_assert_int_eq(parse_shape(cell(t, _i, "kernel_size"), k), 3);
    bool has_bias = strcmp(cell(t, _i, "bias"), "1") == 0;
    int64_t xshape[CG_MAX_DIMS], yshape[CG_MAX_DIMS];
    int xnd = parse_shape(cell(t, _i, "input_shape"), xshape);
    int ynd = parse_shape(cell(t, _i, "output_shape"), yshape);

    /* torch.manual_seed(seed); ConvTranspose3d(...) */
    cg_manual_seed(parse_seed(cell(t, _i, "seed")));
    int64_t wshape[5] = {cin, cout / groups, k[0], k[1], k[2]};
    int64_t fan_in = wshape[1] * k[0] * k[1] * k[2];
    cg_tensor *w = NULL, *b = NULL, *x = NULL, *gy = NULL;
    tu_ok(cg_empty(wshape, 5, dt, &w));
    if (fan_in > 0 && cg_tensor_numel(w) > 0) {
        /* kaiming_uniform_(a=sqrt(5)), evaluated in this order */
        double s5 = sqrt(5.0);
        double gain = sqrt(2.0 / (1 + s5 * s5));
        double std = gain / sqrt((double)fan_in);
        double bound = sqrt(3.0) * std;
        tu_ok(cg_tensor_uniform_(w, -bound, bound, NULL));
    }
    if (has_bias) {
        tu_ok(cg_empty(&cout, 1, dt, &b));
        if (fan_in > 0) {
            double bb = 1 / sqrt((double)fan_in);
            tu_ok(cg_tensor_uniform_(b, -bb, bb, NULL));
        }
    }
    /* x = randn(input shape); ...; gy = randn(output shape) */
    tu_ok(cg_randn(xshape, xnd, dt, NULL, &x));
    tu_ok(cg_randn(yshape, ynd, dt, NULL, &gy));

    check_golden_part(name, "weight", w);
    if (has_bias)
        check_golden_part(name, "bias", b);
    check_golden_part(name, "input", x);
    check_golden_part(name, "grad_output", gy);
    cg_tensor_release(w);
    cg_tensor_release(b);
    cg_tensor_release(x);
    cg_tensor_release(gy);
}
END_TEST

/* ======================================================================
 * torch: replay of tests/data/rng/cases.tsv
 * ====================================================================== */

static table fixtures;
static bool fixtures_loaded;
static char fixtures_problem[512];
static int nseq;
static int *seq_first; /* first row of each sequence */
static int *seq_rows;  /* rows in each sequence */

static cg_tensor *fixture_values[CG_DTYPE_COUNT];

/* The concatenated values of one dtype (loaded once per process). */
static const char *fixture_data(cg_dtype dt, int64_t offset, int64_t count)
{
    if (!fixture_values[dt]) {
        char rel[128];
        snprintf(rel, sizeof rel, "rng/rng_%s.npy", cg_dtype_name(dt));
        fixture_values[dt] = tu_load(rel);
        ck_assert_int_eq(cg_tensor_dtype(fixture_values[dt]), dt);
    }
    ck_assert_int_le(offset + count, cg_tensor_numel(fixture_values[dt]));
    return (const char *)cg_tensor_data(fixture_values[dt]) +
           (size_t)offset * cg_dtype_size(dt);
}

/* The base tensor a view of `shape` is cut from (gen_rng.py's rules), and
 * the view's strides within it. Returns the base's ndim. */
static int view_geometry(const char *view, const int64_t *shape, int ndim,
                         int64_t *base, int64_t *strides)
{
    memcpy(base, shape, (size_t)ndim * sizeof *shape);
    if (strcmp(view, "contig") == 0) {
        cg__contiguous_strides(shape, ndim, strides);
    } else if (strcmp(view, "t") == 0) { /* base.t() */
        ck_assert_int_eq(ndim, 2);
        base[0] = shape[1];
        base[1] = shape[0];
        strides[0] = 1;
        strides[1] = shape[0];
    } else if (strcmp(view, "step") == 0) { /* base[::2] */
        base[0] = 2 * shape[0];
        cg__contiguous_strides(base, ndim, strides);
        strides[0] *= 2;
    } else if (strcmp(view, "perm") == 0) { /* base.permute(2, 0, 1) */
        ck_assert_int_eq(ndim, 3);
        base[0] = shape[1];
        base[1] = shape[2];
        base[2] = shape[0];
        strides[0] = 1;
        strides[1] = shape[2] * shape[0];
        strides[2] = shape[0];
    } else {
        ck_abort_msg("unknown view %s", view);
    }
    return ndim;
}

/* Replays one row on g (NULL: the default generator, seeded with
 * cg_manual_seed as torch.manual_seed seeds it). */
static void replay_row(int r, cg_generator *g)
{
    const table *t = &fixtures;
    const char *seed = cell(t, r, "seed");
    if (strcmp(seed, "=") != 0) {
        if (g)
            cg_generator_manual_seed(g, parse_seed(seed));
        else
            cg_manual_seed(parse_seed(seed));
    }
    const char *op = cell(t, r, "op");
    cg_dtype dt = parse_dtype(cell(t, r, "dtype"));
    int64_t shape[CG_MAX_DIMS];
    int ndim = parse_shape(cell(t, r, "shape"), shape);
    int64_t offset = cell_ll(t, r, "offset"), count = cell_ll(t, r, "count");
    char what[256];
    snprintf(what, sizeof what, "row %d (seq %s, %s %s %s [%s] %s %s %s, %s)",
             r + 2, cell(t, r, "seq"), cell(t, r, "group"), op,
             cell(t, r, "dtype"), cell(t, r, "shape"), cell(t, r, "view"),
             cell(t, r, "a"), cell(t, r, "b"),
             g ? "own generator" : "default generator");

    if (strcmp(op, "random64") == 0) {
        /* stored as (high word, low word) pairs of exact doubles */
        const double *want = (const double *)(const void *)fixture_data(
            CG_FLOAT64, offset, count);
        ck_assert_int_eq(count, 2 * shape[0]);
        cg_generator *gen = g ? g : cg_default_generator();
        for (int64_t i = 0; i < shape[0]; i++) {
            uint64_t v = cg_generator_random64(gen);
            ck_assert_msg((double)(v >> 32) == want[2 * i] &&
                              (double)(v & 0xFFFFFFFFu) == want[2 * i + 1],
                          "%s: draw %lld is %llu", what, (long long)i,
                          (unsigned long long)v);
        }
        return;
    }

    cg_tensor *base = NULL;
    if (strcmp(op, "rand") == 0) {
        tu_ok(cg_rand(shape, ndim, dt, g, &base));
    } else if (strcmp(op, "randn") == 0) {
        tu_ok(cg_randn(shape, ndim, dt, g, &base));
    } else {
        int64_t bshape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
        int bnd =
            view_geometry(cell(t, r, "view"), shape, ndim, bshape, strides);
        tu_ok(cg_zeros(bshape, bnd, dt, &base));
        cg_tensor *v = NULL;
        tu_ok(cg__tensor_view_of(base, shape, strides, ndim, 0, &v));
        double a = strtod(cell(t, r, "a"), NULL);
        double b = strtod(cell(t, r, "b"), NULL);
        if (strcmp(op, "uniform") == 0)
            tu_ok(cg_tensor_uniform_(v, a, b, g));
        else if (strcmp(op, "normal") == 0)
            tu_ok(cg_tensor_normal_(v, a, b, g));
        else
            ck_abort_msg("unknown op %s", op);
        cg_tensor_release(v);
    }
    ck_assert(cg_tensor_is_contiguous(base));
    const char *view = cell(t, r, "view");
    if (strncmp(view, "at:", 3) == 0) { /* only the listed elements */
        const char *want = fixture_data(dt, offset, count);
        size_t es = cg_dtype_size(dt);
        const char *p = view + 3;
        for (int64_t k = 0; k < count; k++) {
            char *end;
            int64_t at = strtoll(p, &end, 10);
            ck_assert_int_lt(at, cg_tensor_numel(base));
            char at_what[300];
            snprintf(at_what, sizeof at_what, "%s element %lld", what,
                     (long long)at);
            assert_same_bits((const char *)cg_tensor_data(base) +
                                 (size_t)at * es,
                             want + (size_t)k * es, 1, dt, at_what);
            p = *end == ',' ? end + 1 : end;
        }
    } else {
        ck_assert_int_eq(cg_tensor_numel(base), count);
        assert_same_bits(cg_tensor_data(base), fixture_data(dt, offset, count),
                         count, dt, what);
    }
    cg_tensor_release(base);
}

START_TEST(test_torch_sequence)
{
    ck_assert_msg(fixtures_loaded, "%s", fixtures_problem);
    /* once as torch does it (default generator), once on a generator of
     * our own, which must behave the same */
    for (int r = seq_first[_i]; r < seq_first[_i] + seq_rows[_i]; r++)
        replay_row(r, NULL);
    cg_generator *g = new_gen(0);
    cg_generator_random(g); /* a used generator: seeding must reset it */
    for (int r = seq_first[_i]; r < seq_first[_i] + seq_rows[_i]; r++)
        replay_row(r, g);
    cg_generator_free(g);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

/* What an error must leave alone: the tensor's values and version, and
 * the generator (the next draws equal a twin's). */
typedef struct untouched {
    cg_tensor *t;
    double *values;
    int64_t nvalues;
    unsigned long version;
} untouched;

static void remember(untouched *u, cg_tensor *t)
{
    u->t = t;
    u->nvalues = cg_tensor_numel(t) * (cg_dtype_is_complex(t->dtype) ? 2 : 1);
    u->values = malloc((size_t)(u->nvalues + 1) * sizeof(double));
    ck_assert_ptr_nonnull(u->values);
    tu_ok(cg_tensor_to_doubles(t, u->values, u->nvalues));
    u->version = atomic_load(&t->storage->version);
}

static void assert_untouched(untouched *u)
{
    double *now = malloc((size_t)(u->nvalues + 1) * sizeof(double));
    ck_assert_ptr_nonnull(now);
    tu_ok(cg_tensor_to_doubles(u->t, now, u->nvalues));
    for (int64_t i = 0; i < u->nvalues; i++)
        ck_assert_msg(memcmp(&now[i], &u->values[i], sizeof(double)) == 0,
                      "value %lld changed", (long long)i);
    ck_assert_uint_eq(atomic_load(&u->t->storage->version), u->version);
    free(now);
    free(u->values);
}

/* The generator continues exactly as its twin: both draw a normal (the
 * cache) and raw words. */
static void assert_same_stream(cg_generator *g, cg_generator *twin)
{
    int64_t one = 1;
    cg_tensor *a = NULL, *b = NULL;
    tu_ok(cg_randn(&one, 1, CG_FLOAT64, g, &a));
    tu_ok(cg_randn(&one, 1, CG_FLOAT64, twin, &b));
    assert_same_bits(cg_tensor_data(a), cg_tensor_data(b), 1, CG_FLOAT64,
                     "the normal after the error");
    cg_tensor_release(a);
    cg_tensor_release(b);
    for (int i = 0; i < 8; i++)
        ck_assert_uint_eq(cg_generator_random(g), cg_generator_random(twin));
}

/* Leaves the generator with a cached normal sample (randn(3) draws two
 * pairs and keeps one sine). */
static void prime(cg_generator *g)
{
    int64_t three = 3;
    cg_tensor *t = NULL;
    tu_ok(cg_randn(&three, 1, CG_FLOAT64, g, &t));
    cg_tensor_release(t);
}

typedef struct uniform_error {
    double from, to;
    cg_dtype dt;
    int64_t n;
    const char *msg;
} uniform_error;

static const uniform_error uniform_errors[] = {
    {2, 1, CG_FLOAT32, 3,
     "uniform_ expects to return a [from, to) range, but found from=2 > to=1"},
    {0.5, 0.25, CG_FLOAT64, 3,
     "uniform_ expects to return a [from, to) range, but found from=0.5 > "
     "to=0.25"},
    {1e-7, -3, CG_COMPLEX64, 3,
     "uniform_ expects to return a [from, to) range, but found from=1e-07 > "
     "to=-3"},
    {1234567.0, 2, CG_COMPLEX128, 3,
     "uniform_ expects to return a [from, to) range, but found "
     "from=1.23457e+06 > to=2"},
    {-0.0, -1, CG_FLOAT32, 3,
     "uniform_ expects to return a [from, to) range, but found from=-0 > "
     "to=-1"},
    {1.0 / 3, 0.1, CG_FLOAT32, 3,
     "uniform_ expects to return a [from, to) range, but found "
     "from=0.333333 > to=0.1"},
    {2, 1, CG_FLOAT32, 0, /* checked even when there is nothing to fill */
     "uniform_ expects to return a [from, to) range, but found from=2 > to=1"},
    {NAN, 1, CG_FLOAT32, 3, "from is out of bounds for float"},
    {0, NAN, CG_FLOAT32, 3, "to is out of bounds for float"},
    {-1e39, 3e38, CG_FLOAT32, 3, "from is out of bounds for float"},
    {0, INFINITY, CG_COMPLEX64, 3, "to is out of bounds for float"},
    {-INFINITY, 3e38, CG_FLOAT64, 3, "from is out of bounds for double"},
    {-3e38, 3e38, CG_FLOAT32, 3,
     "uniform_ expects to-from <= std::numeric_limits<Float>::max(), but "
     "found to=3e+38 and from=-3e+38 which result in to-from to exceed the "
     "limit"},
    {-3e38, 3e38, CG_COMPLEX64, 3,
     "uniform_ expects to-from <= std::numeric_limits<Float>::max(), but "
     "found to=3e+38 and from=-3e+38 which result in to-from to exceed the "
     "limit"},
    {-1.7e308, 1.7e308, CG_FLOAT64, 3,
     "uniform_ expects to-from <= std::numeric_limits<Double>::max(), but "
     "found to=1.7e+308 and from=-1.7e+308 which result in to-from to "
     "exceed the limit"},
};

START_TEST(test_uniform_errors)
{
    const uniform_error *e = &uniform_errors[_i];
    for (int use_default = 0; use_default < 2; use_default++) {
        cg_generator *g = new_gen(77), *twin = new_gen(77);
        if (use_default)
            cg_manual_seed(77);
        cg_generator *gen = use_default ? NULL : g;
        prime(use_default ? cg_default_generator() : g);
        prime(twin);
        cg_tensor *t = NULL;
        tu_ok(cg_full(&e->n, 1, 0.25, e->dt, &t));
        untouched u;
        remember(&u, t);
        tu_fails(cg_tensor_uniform_(t, e->from, e->to, gen), CG_ERR_RUNTIME,
                 e->msg);
        assert_untouched(&u);
        assert_same_stream(use_default ? cg_default_generator() : g, twin);
        cg_tensor_release(t);
        cg_generator_free(g);
        cg_generator_free(twin);
    }
}
END_TEST

typedef struct normal_error {
    double std;
    cg_dtype dt;
    int64_t n;
    const char *msg;
} normal_error;

static const normal_error normal_errors[] = {
    {-1, CG_FLOAT32, 3, "normal expects std >= 0.0, but found std -1"},
    {-1, CG_FLOAT32, 40, "normal expects std >= 0.0, but found std -1"},
    {-1, CG_FLOAT64, 0, "normal expects std >= 0.0, but found std -1"},
    {-0.5, CG_FLOAT64, 20, "normal expects std >= 0.0, but found std -0.5"},
    {NAN, CG_COMPLEX64, 3, "normal expects std >= 0.0, but found std nan"},
    {-INFINITY, CG_COMPLEX128, 9,
     "normal expects std >= 0.0, but found std -inf"},
};

START_TEST(test_normal_errors)
{
    const normal_error *e = &normal_errors[_i];
    for (int use_default = 0; use_default < 2; use_default++) {
        cg_generator *g = new_gen(78), *twin = new_gen(78);
        if (use_default)
            cg_manual_seed(78);
        cg_generator *gen = use_default ? NULL : g;
        prime(use_default ? cg_default_generator() : g);
        prime(twin);
        cg_tensor *t = NULL;
        tu_ok(cg_full(&e->n, 1, -4.5, e->dt, &t));
        untouched u;
        remember(&u, t);
        tu_fails(cg_tensor_normal_(t, 0.0, e->std, gen), CG_ERR_RUNTIME,
                 e->msg);
        assert_untouched(&u);
        assert_same_stream(use_default ? cg_default_generator() : g, twin);
        cg_tensor_release(t);
        cg_generator_free(g);
        cg_generator_free(twin);
    }
}
END_TEST

START_TEST(test_overlap_error)
{
    static const char msg[] =
        "unsupported operation: more than one element of the written-to "
        "tensor refers to a single memory location. Please clone() the "
        "tensor before performing the operation.";
    for (int d = 0; d < CG_DTYPE_COUNT; d++) {
        cg_generator *g = new_gen(5), *twin = new_gen(5);
        int64_t one = 1, three = 3, zero = 0, stride0 = 0, twenty = 20;
        cg_tensor *base = NULL, *e3 = NULL, *e0 = NULL, *e20 = NULL;
        tu_ok(cg_full(&one, 1, 1.5, (cg_dtype)d, &base));
        /* torch.empty(1).expand(3) */
        tu_ok(cg__tensor_view_of(base, &three, &stride0, 1, 0, &e3));
        tu_ok(cg__tensor_view_of(base, &twenty, &stride0, 1, 0, &e20));
        tu_ok(cg__tensor_view_of(base, &zero, &stride0, 1, 0, &e0));
        untouched u;
        remember(&u, base);
        tu_fails(cg_tensor_uniform_(e3, 0, 1, g), CG_ERR_RUNTIME, msg);
        tu_fails(cg_tensor_normal_(e3, 0, 1, g), CG_ERR_RUNTIME, msg);
        tu_fails(cg_tensor_normal_(e20, 0, 1, g), CG_ERR_RUNTIME, msg);
        /* the range and std checks come first */
        tu_fails(cg_tensor_uniform_(e3, 2, 1, g), CG_ERR_RUNTIME,
                 "uniform_ expects to return a [from, to) range, but found "
                 "from=2 > to=1");
        tu_fails(cg_tensor_normal_(e3, 0, -1, g), CG_ERR_RUNTIME,
                 "normal expects std >= 0.0, but found std -1");
        assert_untouched(&u);
        /* nothing to write: no overlap to complain about */
        tu_ok(cg_tensor_uniform_(e0, 0, 1, g));
        tu_ok(cg_tensor_normal_(e0, 0, 1, g));
        assert_same_stream(g, twin);
        cg_tensor_release(e3);
        cg_tensor_release(e20);
        cg_tensor_release(e0);
        cg_tensor_release(base);
        cg_generator_free(g);
        cg_generator_free(twin);
    }
}
END_TEST

START_TEST(test_leaf_requires_grad)
{
    static const char leaf[] =
        "a leaf Variable that requires grad is being used in an in-place "
        "operation.";
    int64_t n = 3;
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(&n, 1, CG_FLOAT32, &t));
    tu_ok(cg_tensor_requires_grad_(t, true));
    cg_generator *g = new_gen(6), *twin = new_gen(6);
    untouched u;
    remember(&u, t);
    tu_fails(cg_tensor_uniform_(t, 0, 1, g), CG_ERR_RUNTIME, leaf);
    /* the leaf check comes before the argument checks, as in PyTorch */
    tu_fails(cg_tensor_uniform_(t, 2, 1, g), CG_ERR_RUNTIME, leaf);
    tu_fails(cg_tensor_normal_(t, 0, -1, g), CG_ERR_RUNTIME, leaf);
    assert_untouched(&u);
    assert_same_stream(g, twin);
    /* under no_grad (how nn.init fills parameters) it works and bumps the
     * version counter */
    bool prev = cg_set_grad_enabled(false);
    unsigned long v0 = atomic_load(&t->storage->version);
    tu_ok(cg_tensor_uniform_(t, 0, 1, g));
    ck_assert_uint_eq(atomic_load(&t->storage->version), v0 + 1);
    tu_ok(cg_tensor_normal_(t, 0, 1, g));
    ck_assert_uint_eq(atomic_load(&t->storage->version), v0 + 2);
    cg_set_grad_enabled(prev);
    cg_tensor_release(t);
    cg_generator_free(g);
    cg_generator_free(twin);
}
END_TEST

START_TEST(test_misuse)
{
    int64_t shape[] = {2, -1}, two = 2;
    cg_tensor *t = NULL;
    cg_generator *g = new_gen(8), *twin = new_gen(8);
    tu_fails(cg_tensor_uniform_(NULL, 0, 1, g), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_tensor_normal_(NULL, 0, 1, g), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_rand(&two, 1, CG_FLOAT32, g, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_randn(&two, 1, CG_FLOAT32, g, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_generator_new(1, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_rand(shape, 2, CG_FLOAT32, g, &t), CG_ERR_RUNTIME,
             "Trying to create tensor with negative dimension -1: [2, -1]");
    tu_fails(cg_randn(shape, 2, CG_FLOAT64, g, &t), CG_ERR_RUNTIME,
             "Trying to create tensor with negative dimension -1: [2, -1]");
    tu_fails(cg_randn(&two, 1, (cg_dtype)7, g, &t), CG_ERR_VALUE,
             "invalid dtype 7");
    ck_assert_ptr_null(t);
    assert_same_stream(g, twin);
    cg_generator_free(g);
    cg_generator_free(twin);
}
END_TEST

/* Allocation failures: rand / randn / generator_new fail cleanly, leak
 * nothing and draw nothing. */
typedef struct alloc_ctx {
    cg_generator *g;
    int which;
} alloc_ctx;

static cg_status alloc_scenario(void *p)
{
    alloc_ctx *c = p;
    int64_t shape[] = {5, 7};
    cg_tensor *t = NULL;
    cg_status st;
    if (c->which == 0) {
        st = cg_rand(shape, 2, CG_COMPLEX64, c->g, &t);
    } else if (c->which == 1) {
        st = cg_randn(shape, 2, CG_FLOAT32, c->g, &t);
    } else {
        cg_generator *g = NULL;
        st = cg_generator_new(3, &g);
        if (st == CG_OK)
            ck_assert_uint_eq(cg_generator_random(g), 2365658986u);
        cg_generator_free(g);
        return st;
    }
    if (st != CG_OK) {
        ck_assert_ptr_null(t);
        return st;
    }
    cg_tensor_release(t);
    return st;
}

START_TEST(test_alloc_failures)
{
    for (int which = 0; which < 3; which++) {
        alloc_ctx c = {new_gen(9), which};
        cg_generator *twin = new_gen(9);
        long n = tu_alloc_sweep(alloc_scenario, &c, "rng allocation");
        ck_assert_int_gt(n, 0);
        /* the successful run drew once; the failing ones drew nothing */
        if (which < 2) {
            int64_t shape[] = {5, 7};
            cg_tensor *t = NULL;
            tu_ok(which == 0 ? cg_rand(shape, 2, CG_COMPLEX64, twin, &t)
                             : cg_randn(shape, 2, CG_FLOAT32, twin, &t));
            cg_tensor_release(t);
        }
        assert_same_stream(c.g, twin);
        cg_generator_free(c.g);
        cg_generator_free(twin);
    }
}
END_TEST

/* ======================================================================
 * threads
 * ====================================================================== */

#define WORK_BYTES 65536

/* A fixed mix of fills on one generator, every path; the bytes produced
 * are appended to out. */
typedef struct work {
    cg_generator *g;
    unsigned char out[WORK_BYTES];
    size_t used;
    cg_status st;
} work;

static void work_append(work *w, cg_tensor *t)
{
    size_t n = (size_t)cg_tensor_numel(t) * cg_dtype_size(cg_tensor_dtype(t));
    if (w->used + n <= WORK_BYTES) {
        memcpy(w->out + w->used, cg_tensor_data(t), n);
        w->used += n;
    }
}

static void *work_run(void *p)
{
    work *w = p;
    static const struct {
        int64_t n;
        cg_dtype dt;
        bool normal;
    } steps[] = {
        {1000, CG_FLOAT32, true}, {37, CG_FLOAT64, false},
        {5, CG_FLOAT64, true},    {20, CG_COMPLEX64, false},
        {300, CG_FLOAT64, true},  {3, CG_FLOAT32, true},
        {9, CG_COMPLEX128, true}, {1, CG_FLOAT32, true},
    };
    w->st = CG_OK;
    for (int rep = 0; rep < 20 && w->st == CG_OK; rep++) {
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
            cg_tensor *t = NULL;
            w->st = steps[i].normal
                        ? cg_randn(&steps[i].n, 1, steps[i].dt, w->g, &t)
                        : cg_rand(&steps[i].n, 1, steps[i].dt, w->g, &t);
            if (w->st != CG_OK)
                return NULL;
            work_append(w, t);
            cg_tensor_release(t);
        }
    }
    return NULL;
}

START_TEST(test_threads_own_generators)
{
    static work par[2], seq[2];
    for (int i = 0; i < 2; i++) {
        par[i].g = new_gen(100 + (uint64_t)i);
        seq[i].g = new_gen(100 + (uint64_t)i);
        par[i].used = seq[i].used = 0;
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, work_run, &par[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2; i++)
        work_run(&seq[i]);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(par[i].st, CG_OK);
        ck_assert_int_eq(seq[i].st, CG_OK);
        ck_assert_uint_gt(par[i].used, 0);
        ck_assert_uint_eq(par[i].used, seq[i].used);
        ck_assert_msg(memcmp(par[i].out, seq[i].out, par[i].used) == 0,
                      "thread %d's stream differs from the sequential one", i);
        cg_generator_free(par[i].g);
        cg_generator_free(seq[i].g);
    }
}
END_TEST

#define SHARED_FILLS 10
#define SHARED_N 1000

typedef struct shared_work {
    cg_generator *g;
    float vals[SHARED_FILLS][SHARED_N];
    cg_status st;
} shared_work;

static void *shared_run(void *p)
{
    shared_work *w = p;
    int64_t n = SHARED_N;
    w->st = CG_OK;
    for (int f = 0; f < SHARED_FILLS; f++) {
        cg_tensor *t = NULL;
        w->st = cg_rand(&n, 1, CG_FLOAT32, w->g, &t);
        if (w->st != CG_OK)
            return NULL;
        memcpy(w->vals[f], cg_tensor_data(t), sizeof w->vals[f]);
        cg_tensor_release(t);
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

typedef struct raw_work {
    cg_generator *g;
    uint32_t *out;
    int n;
} raw_work;

static void *raw_run(void *p)
{
    raw_work *w = p;
    for (int i = 0; i < w->n; i++)
        w->out[i] = cg_generator_random(w->g);
    return NULL;
}

START_TEST(test_threads_shared_generator)
{
    /* Each fill holds the lock: the 20 fills are the 20 consecutive
     * 1000-draw chunks of the stream, in some order, each used once. */
    static shared_work w[2];
    static float ref[2 * SHARED_FILLS][SHARED_N];
    cg_generator *g = new_gen(31), *seqg = new_gen(31);
    int64_t n = SHARED_N;
    for (int c = 0; c < 2 * SHARED_FILLS; c++) {
        cg_tensor *t = NULL;
        tu_ok(cg_rand(&n, 1, CG_FLOAT32, seqg, &t));
        memcpy(ref[c], cg_tensor_data(t), sizeof ref[c]);
        cg_tensor_release(t);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        w[i].g = g;
        ck_assert_int_eq(pthread_create(&th[i], NULL, shared_run, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    bool used[2 * SHARED_FILLS] = {false};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(w[i].st, CG_OK);
        for (int f = 0; f < SHARED_FILLS; f++) {
            int found = -1;
            for (int c = 0; c < 2 * SHARED_FILLS && found < 0; c++)
                if (!used[c] &&
                    memcmp(w[i].vals[f], ref[c], sizeof ref[c]) == 0)
                    found = c;
            ck_assert_msg(found >= 0,
                          "thread %d fill %d is not a whole "
                          "chunk of the stream",
                          i, f);
            used[found] = true;
        }
    }
    /* raw draws: together the threads get exactly the first 2n outputs */
    enum { RAW = 50000 };
    uint32_t *all = malloc(2 * RAW * sizeof *all);
    uint32_t *want = malloc(2 * RAW * sizeof *want);
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(want);
    cg_generator_manual_seed(g, 32);
    cg_generator_manual_seed(seqg, 32);
    raw_work rw[2] = {{g, all, RAW}, {g, all + RAW, RAW}};
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, raw_run, &rw[i]), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 2 * RAW; i++)
        want[i] = cg_generator_random(seqg);
    qsort(all, 2 * RAW, sizeof *all, cmp_u32);
    qsort(want, 2 * RAW, sizeof *want, cmp_u32);
    ck_assert(memcmp(all, want, 2 * RAW * sizeof *all) == 0);
    free(all);
    free(want);
    cg_generator_free(g);
    cg_generator_free(seqg);
}
END_TEST

/* ======================================================================
 * The suite
 * ====================================================================== */

/* Groups the fixture rows into sequences (consecutive rows of one seq). */
static bool index_sequences(void)
{
    nseq = 0;
    seq_first = malloc((size_t)(fixtures.nrows + 1) * sizeof *seq_first);
    seq_rows = malloc((size_t)(fixtures.nrows + 1) * sizeof *seq_rows);
    int seq = -1;
    for (int c = 0; c < fixtures.ncols; c++)
        if (strcmp(fixtures.head[c], "seq") == 0)
            seq = c;
    if (!seq_first || !seq_rows || seq < 0) {
        snprintf(table_problem, sizeof table_problem,
                 "rng/cases.tsv: no seq column or no memory");
        return false;
    }
    for (int r = 0; r < fixtures.nrows; r++) {
        const char *now = fixtures.cells[(size_t)r * fixtures.ncols + seq];
        if (r == 0 ||
            strcmp(now,
                   fixtures.cells[(size_t)(r - 1) * fixtures.ncols + seq]) !=
                0) {
            seq_first[nseq] = r;
            seq_rows[nseq] = 0;
            nseq++;
        }
        seq_rows[nseq - 1]++;
    }
    return true;
}

Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");

    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, test_mt19937_known_outputs);
    tcase_add_test(tc, test_random64_word_order);
    tcase_add_test(tc, test_seed_low_32_bits);
    tcase_add_test(tc, test_manual_seed_minus_one);
    tcase_add_test(tc, test_initial_seed);
    tcase_add_test(tc, test_default_generator_start);
    tcase_add_test(tc, test_manual_seed_clears_cache);
    tcase_add_test(tc, test_kaiming_bound_constants);
    suite_add_tcase(s, tc);

    golden_loaded = table_load(tu_data_path("golden/cases.tsv"), &golden);
    memcpy(golden_problem, table_problem, sizeof golden_problem);
    tc = tcase_create("golden");
    tcase_add_loop_test(tc, test_golden_case, 0,
                        golden_loaded ? golden.nrows : 1);
    suite_add_tcase(s, tc);

    fixtures_loaded = table_load(tu_data_path("rng/cases.tsv"), &fixtures) &&
                      index_sequences();
    memcpy(fixtures_problem, table_problem, sizeof fixtures_problem);
    tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_torch_sequence, 0, fixtures_loaded ? nseq : 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_uniform_errors, 0,
                        (int)(sizeof uniform_errors / sizeof *uniform_errors));
    tcase_add_loop_test(tc, test_normal_errors, 0,
                        (int)(sizeof normal_errors / sizeof *normal_errors));
    tcase_add_test(tc, test_overlap_error);
    tcase_add_test(tc, test_leaf_requires_grad);
    tcase_add_test(tc, test_misuse);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_add_test(tc, test_threads_own_generators);
    tcase_add_test(tc, test_threads_shared_generator);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
