/*
 * rng.c -- random numbers: the MT19937 generator (torch.Generator), the
 * in-place fills uniform_ and normal_, and rand / randn, bit-exact with
 * PyTorch 1.13's CPU generator as built for x86-64 with AVX2.
 *
 * What is mirrored (CONV_TRANSPOSE3D.md section 6 states each fact; the
 * reference model is reference/rng_check.py):
 *   - seeding: the seed is kept as a uint64, the engine takes its low 32
 *     bits (Matsumoto-Nishimura init_genrand); seeding clears the cached
 *     normal sample. random64() is two outputs, the first the high word.
 *   - uniform_: float32 uses the low 24 bits of one output and computes
 *     fmaf(x, to - from, from) in float32; float64 the low 53 bits of
 *     random64() and fma(). PyTorch's AVX2 kernels are compiled with FMA
 *     contraction, so the single rounding is what PyTorch really does.
 *   - normal_: path A (fewer than 16 elements, or not contiguous): scalar
 *     Box-Muller in double with the generator's cached second sample,
 *     log(1 - u2), value fma(v, std, mean) cast to the dtype. Path B
 *     (float64, 16 or more, contiguous): blocks of 16 over pre-drawn
 *     uniforms, the last 16 refilled when n % 16 != 0. Path C (float32,
 *     16 or more, contiguous): the same blocks with the AVX2 kernel's
 *     float32 arithmetic, modelled lane by lane (log_approx,
 *     sincos_approx), fusing exactly where GCC fuses it.
 *   - complex tensors are filled through their real view (re, im pairs):
 *     two real draws per element; normal_ uses std / sqrt(2) and picks its
 *     path by the real view's 2n elements.
 *   - non-contiguous tensors are filled in TensorIterator's order: the
 *     dimensions sorted by stride (memory order), not logical row-major
 *     order, so a transposed tensor receives the same memory image as a
 *     contiguous one.
 *   - checks and messages in PyTorch's order: the leaf check, then the
 *     range / std checks, then the internal-overlap check.
 *
 * The build uses -ffp-contract=off, so every fused multiply-add here is an
 * explicit fma()/fmaf() and every other operation rounds as written.
 * Paths A and B call libm's log, sin, cos; they match PyTorch bit for bit
 * with glibc (what PyTorch and Python use on Linux).
 *
 * Left out: the default generator is seeded with 67280421310721 rather
 * than from /dev/urandom (PyTorch 1.13 seeds its default generator
 * non-deterministically; only torch.Generator() starts at that constant),
 * half/bfloat16, other generator algorithms (Philox), get/set_state, and
 * the UniformBackward0 / NormalBackward0 nodes PyTorch records when a
 * non-leaf tensor is refilled.
 */
#include "autograd_internal.h"
#include "tensor_internal.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

/* ======================================================================
 * The generator: MT19937 plus the cached normal sample
 * ====================================================================== */

#define MT_N 624 /* state words */
#define MT_M 397 /* middle word of the twist */
#define MT_MATRIX_A 0x9908B0DFu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7FFFFFFFu

/* PyTorch's default_rng_seed_val. */
#define CG_DEFAULT_SEED UINT64_C(67280421310721)

struct cg_generator {
    pthread_mutex_t mutex;  /* held around every draw, fill and reseed */
    uint32_t state[MT_N];   /* MT19937 state */
    int index;              /* next word to temper; MT_N: twist first */
    bool has_cached_normal; /* path A's second Box-Muller sample is set */
    double cached_normal;   /* that sample, before std and mean */
    uint64_t seed;          /* initial_seed(): the full 64-bit seed */
};

static void mt_seed(cg_generator *g, uint64_t seed)
{
    g->state[0] = (uint32_t)seed; /* the low 32 bits */
    for (uint32_t j = 1; j < MT_N; j++) {
        uint32_t prev = g->state[j - 1];
        g->state[j] = 1812433253u * (prev ^ (prev >> 30)) + j;
    }
    g->index = MT_N;
    g->has_cached_normal = false;
    g->cached_normal = 0.0;
    g->seed = seed;
}

static void mt_twist(cg_generator *g)
{
    uint32_t *s = g->state;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (s[i] & MT_UPPER) | (s[(i + 1) % MT_N] & MT_LOWER);
        uint32_t v = s[(i + MT_M) % MT_N] ^ (y >> 1);
        s[i] = (y & 1u) ? v ^ MT_MATRIX_A : v;
    }
    g->index = 0;
}

/* random(): one tempered output. The caller holds the mutex. */
static uint32_t mt_next(cg_generator *g)
{
    if (g->index >= MT_N)
        mt_twist(g);
    uint32_t y = g->state[g->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9D2C5680u;
    y ^= (y << 15) & 0xEFC60000u;
    y ^= y >> 18;
    return y;
}

/* random64(): the first output is the high word. */
static uint64_t mt_next64(cg_generator *g)
{
    uint64_t hi = mt_next(g);
    uint64_t lo = mt_next(g);
    return (hi << 32) | lo;
}

/* ---- locking --------------------------------------------------------- */

/* pthread_mutex_lock on a default-type mutex fails only for an invalid
 * mutex; the fills report it, the void API functions cannot. */
static cg_status gen_lock(cg_generator *g)
{
    if (pthread_mutex_lock(&g->mutex) != 0)
        return cg__error(CG_ERR_RUNTIME,
                         "could not lock the random number generator");
    return CG_OK;
}

static void gen_unlock(cg_generator *g)
{
    pthread_mutex_unlock(&g->mutex);
}

/* ---- the default generator ------------------------------------------- */

static cg_generator default_gen = {.mutex = PTHREAD_MUTEX_INITIALIZER};
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void default_init(void)
{
    mt_seed(&default_gen, CG_DEFAULT_SEED);
}

cg_generator *cg_default_generator(void)
{
    pthread_once(&default_once, default_init);
    return &default_gen;
}

/* NULL stands for the default generator everywhere in this file. */
static cg_generator *gen_or_default(cg_generator *g)
{
    return g ? g : cg_default_generator();
}

/* ---- generator API --------------------------------------------------- */

cg_status cg_generator_new(uint64_t seed, cg_generator **out)
{
    if (!out)
        return cg__error_null("out");
    cg_generator *g = cg__malloc(sizeof *g);
    if (!g)
        return cg__error_nomem(sizeof *g);
    if (pthread_mutex_init(&g->mutex, NULL) != 0) {
        cg__free(g);
        return cg__error(CG_ERR_RUNTIME,
                         "could not create the generator's mutex");
    }
    mt_seed(g, seed);
    *out = g;
    return CG_OK;
}

void cg_generator_free(cg_generator *g)
{
    if (!g || g == &default_gen)
        return;
    pthread_mutex_destroy(&g->mutex);
    cg__free(g);
}

void cg_generator_manual_seed(cg_generator *g, uint64_t seed)
{
    g = gen_or_default(g);
    if (gen_lock(g) != CG_OK)
        return;
    mt_seed(g, seed);
    gen_unlock(g);
}

uint64_t cg_generator_initial_seed(const cg_generator *g)
{
    /* The object is never really const: locking it is fine. */
    cg_generator *m = gen_or_default((cg_generator *)g);
    if (gen_lock(m) != CG_OK)
        return m->seed;
    uint64_t s = m->seed;
    gen_unlock(m);
    return s;
}

/* A failed lock cannot be reported through these signatures; it only
 * happens for a corrupted mutex, and drawing anyway is the least harm. */
uint32_t cg_generator_random(cg_generator *g)
{
    g = gen_or_default(g);
    bool locked = gen_lock(g) == CG_OK;
    uint32_t r = mt_next(g);
    if (locked)
        gen_unlock(g);
    return r;
}

uint64_t cg_generator_random64(cg_generator *g)
{
    g = gen_or_default(g);
    bool locked = gen_lock(g) == CG_OK;
    uint64_t r = mt_next64(g);
    if (locked)
        gen_unlock(g);
    return r;
}

void cg_manual_seed(uint64_t seed)
{
    cg_generator_manual_seed(cg_default_generator(), seed);
}

uint64_t cg_initial_seed(void)
{
    return cg_generator_initial_seed(cg_default_generator());
}

/* ======================================================================
 * Scalar draws
 * ====================================================================== */

/* uniform_real_distribution<float>(0, 1): the low 24 bits of one output,
 * exact in float32. */
static float draw01_f32(cg_generator *g)
{
    return (float)(mt_next(g) & 0xFFFFFFu) * 0x1p-24f;
}

/* uniform_real_distribution<double>(0, 1): the low 53 bits of random64(). */
static double draw01_f64(cg_generator *g)
{
    return (double)(mt_next64(g) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

static float fma_f32(float a, float b, float c)
{
    return fmaf(a, b, c);
}

static double fma_f64(double a, double b, double c)
{
    return fma(a, b, c);
}

/* c10::pi<double>, written out (M_PI is not C11). */
static const double PI_D = 3.14159265358979323846;

/* Path A: normal_distribution<double> without std and mean. Returns the
 * cached sample if there is one; else draws u1 then u2, returns
 * r*cos(theta) and caches r*sin(theta). */
static double normal_sample(cg_generator *g)
{
    if (g->has_cached_normal) {
        g->has_cached_normal = false;
        return g->cached_normal;
    }
    double u1 = draw01_f64(g);
    double u2 = draw01_f64(g);
    double r = sqrt(-2.0 * log(1.0 - u2));
    double theta = 2.0 * PI_D * u1;
    g->cached_normal = r * sin(theta);
    g->has_cached_normal = true;
    return r * cos(theta);
}

/* ======================================================================
 * Path C: the AVX2 float32 transform, one lane at a time
 * ====================================================================== */

/* The float32 constants of the Cephes-derived log and sincos that ATen's
 * avx_mathfun.h vectorises. Each is the float rounding of the double
 * literal, as the vector code's initialisers produce them. */
static const float SQRTHF = (float)0.707106781186547524;
static const float LOG_P[9] = {
    (float)7.0376836292e-2,  (float)-1.1514610310e-1, (float)1.1676998740e-1,
    (float)-1.2420140846e-1, (float)1.4249322787e-1,  (float)-1.6668057665e-1,
    (float)2.0000714765e-1,  (float)-2.4999993993e-1, (float)3.3333331174e-1};
static const float LOG_Q1 = (float)-2.12194440e-4;
static const float LOG_Q2 = (float)0.693359375;
static const float MINUS_DP[3] = {(float)-0.78515625,
                                  (float)-2.4187564849853515625e-4,
                                  (float)-3.77489497744594108e-8};
static const float SIN_P[3] = {(float)-1.9515295891e-4, (float)8.3321608736e-3,
                               (float)-1.6666654611e-1};
static const float COS_P[3] = {(float)2.443315711809948e-005,
                               (float)-1.388731625493765e-003,
                               (float)4.166664568298827e-002};
static const float FOPI = (float)1.27323954473516; /* 4 / pi */
static const float TWO_PI_F = (float)(2.0 * 3.14159265358979323846);

static uint32_t f32_bits(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static float f32_from_bits(uint32_t b)
{
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* Natural log for x in (0, 1] as the AVX2 kernel computes it: split off
 * the exponent, reduce the mantissa to [sqrt(1/2), sqrt(2)) - 1, a degree-8
 * polynomial. The fused steps are the ones GCC contracts. */
static float log_approx(float x)
{
    const float min_norm = 0x1p-126f;
    x = x > min_norm ? x : min_norm; /* _mm256_max_ps(x, min_norm) */
    uint32_t bits = f32_bits(x);
    int32_t e_int = (int32_t)(bits >> 23) - 0x7F;
    x = f32_from_bits((bits & ~0x7F800000u) | f32_bits(0.5f)); /* [0.5,1) */
    float e = (float)e_int + 1.0f;
    if (x < SQRTHF) {
        e = e - 1.0f;
        x = (x - 1.0f) + x;
    } else {
        x = x - 1.0f;
    }
    float z = x * x;
    float y = LOG_P[0];
    for (int i = 1; i < 9; i++)
        y = fmaf(y, x, LOG_P[i]);
    y = y * x;
    y = fmaf(y, z, e * LOG_Q1);
    y = y - z * 0.5f;
    x = x + y;
    return fmaf(e, LOG_Q2, x);
}

/* sin and cos of x together as the AVX2 kernel computes them: octant j
 * from x * 4/pi, extended-precision reduction by three fused steps, the
 * two polynomials, then octant-dependent swap and signs. */
static void sincos_approx(float x, float *sn, float *cs)
{
    uint32_t sign_sin = f32_bits(x) & 0x80000000u;
    x = fabsf(x);
    int32_t j = (int32_t)(x * FOPI); /* truncation, as cvttps */
    j = (j + 1) & ~1;
    float y = (float)j;
    uint32_t uj = (uint32_t)j;
    uint32_t swap_sin = (uj & 4u) << 29;
    bool use_first = (uj & 2u) == 0;
    for (int i = 0; i < 3; i++)
        x = fmaf(y, MINUS_DP[i], x);
    uint32_t sign_cos = (~(uj - 2u) & 4u) << 29;
    sign_sin ^= swap_sin;

    float z = x * x;
    float yc = COS_P[0];
    yc = fmaf(yc, z, COS_P[1]);
    yc = fmaf(yc, z, COS_P[2]);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = SIN_P[0];
    ys = fmaf(ys, z, SIN_P[1]);
    ys = fmaf(ys, z, SIN_P[2]);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    float s = use_first ? ys : yc;
    float c = use_first ? yc : ys;
    *sn = f32_from_bits(f32_bits(s) ^ sign_sin);
    *cs = f32_from_bits(f32_bits(c) ^ sign_cos);
}

/* One block of 16 float32 uniforms b[0..15] becomes 16 normals: pairs
 * (b[j], b[j+8]) for j = 0..7. Each pair reads only its own two slots. */
static void block16_f32(float *b, float mean, float std)
{
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - b[j]; /* [0, 1) -> (0, 1] for the log */
        float u2 = b[j + 8];
        float radius = sqrtf(-2.0f * log_approx(u1));
        float theta = TWO_PI_F * u2;
        float sn, cs;
        sincos_approx(theta, &sn, &cs);
        b[j] = fmaf(radius * cs, std, mean);
        b[j + 8] = fmaf(radius * sn, std, mean);
    }
}

/* Path B's block: the same in double with libm. */
static void block16_f64(double *b, double mean, double std)
{
    for (int j = 0; j < 8; j++) {
        double u1 = 1.0 - b[j];
        double u2 = b[j + 8];
        double radius = sqrt(-2.0 * log(u1));
        double theta = 2.0 * PI_D * u2;
        b[j] = fma(radius * cos(theta), std, mean);
        b[j + 8] = fma(radius * sin(theta), std, mean);
    }
}

/* ======================================================================
 * Where the values go: the real view in TensorIterator's order
 * ====================================================================== */

/* The real view of a tensor (complex: one more innermost dimension of
 * size 2, stride 1, and doubled strides), its dimensions ordered as
 * TensorIterator orders a nullary op's output: fastest first. Size-1
 * dimensions are dropped after ordering; they never change the order in
 * which elements are visited. */
typedef struct walk {
    char *data; /* storage data, real elements */
    int ndim;   /* dims of size > 1, fastest first */
    int64_t size[CG_MAX_DIMS + 1];
    int64_t stride[CG_MAX_DIMS + 1]; /* in real elements */
    int64_t offset;                  /* first element, in real elements */
    int64_t numel;                   /* real elements */
    bool contiguous;                 /* is_contiguous() of the real view */
    bool overlap;                    /* some size > 1 dim has stride 0 */
    cg_dtype real;                   /* CG_FLOAT32 or CG_FLOAT64 */
} walk;

/* TensorIterator::reorder_dimensions for one operand: an insertion sort
 * that starts from the reversed dimension order and moves a dimension
 * left past another only when the comparison is strict (zero strides are
 * ambiguous; equal strides put the smaller size first). */
static int should_swap(const int64_t *size, const int64_t *stride, int d0,
                       int d1)
{
    int64_t s0 = stride[d0], s1 = stride[d1];
    if (s0 == 0 || s1 == 0)
        return 0;
    if (s0 < s1)
        return -1;
    if (s0 > s1)
        return 1;
    return size[d0] > size[d1] ? 1 : 0;
}

static void walk_init(walk *w, const cg_tensor *t)
{
    int64_t size[CG_MAX_DIMS + 1], stride[CG_MAX_DIMS + 1];
    int n = t->ndim;
    int per = cg_dtype_is_complex(t->dtype) ? 2 : 1;
    for (int d = 0; d < n; d++) {
        size[d] = t->shape[d];
        stride[d] = t->strides[d] * per;
    }
    if (per == 2) {
        size[n] = 2;
        stride[n] = 1;
        n++;
    }
    w->data = (char *)t->storage->data;
    w->offset = t->offset * per;
    w->real = cg_dtype_to_real(t->dtype);
    w->contiguous = cg_tensor_is_contiguous(t);
    w->numel = cg_tensor_numel(t) * per;
    w->overlap = false;
    for (int d = 0; d < n; d++)
        if (stride[d] == 0 && size[d] > 1)
            w->overlap = true;

    int perm[CG_MAX_DIMS + 1];
    for (int i = 0; i < n; i++)
        perm[i] = n - 1 - i;
    for (int i = 1; i < n; i++) {
        int d1 = i;
        for (int d0 = i - 1; d0 >= 0; d0--) {
            int c = should_swap(size, stride, perm[d0], perm[d1]);
            if (c > 0) {
                int tmp = perm[d0];
                perm[d0] = perm[d1];
                perm[d1] = tmp;
                d1 = d0;
            } else if (c < 0) {
                break;
            }
        }
    }
    w->ndim = 0;
    for (int i = 0; i < n; i++) {
        if (size[perm[i]] != 1) {
            w->size[w->ndim] = size[perm[i]];
            w->stride[w->ndim] = stride[perm[i]];
            w->ndim++;
        }
    }
    if (w->contiguous) { /* one flat run: same order, cheaper to walk */
        w->ndim = 1;
        w->size[0] = w->numel;
        w->stride[0] = 1;
    }
}

/* A position in a walk: storage index (real elements) and counters. */
typedef struct walk_pos {
    int64_t pos;
    int64_t idx[CG_MAX_DIMS + 1];
} walk_pos;

static void walk_begin(walk_pos *p, const walk *w)
{
    p->pos = w->offset;
    for (int d = 0; d < w->ndim; d++)
        p->idx[d] = 0;
}

static void walk_next(walk_pos *p, const walk *w)
{
    for (int d = 0; d < w->ndim; d++) {
        p->pos += w->stride[d];
        if (++p->idx[d] < w->size[d])
            return;
        p->pos -= w->stride[d] * w->size[d];
        p->idx[d] = 0;
    }
}

/* ======================================================================
 * The kernels, written once and instantiated for float and double
 * ====================================================================== */

/* uniform_: one draw per real element, value fma(x, width, from).
 * normal_ path A: one scalar sample per element, fma(v, std, mean) in
 * double, cast to T. normal_ paths B / C: n >= 16 contiguous elements. */
#define RNG_KERNELS(S, T)                                                      \
    static void uniform_##S(cg_generator *g, const walk *w, T from, T width)   \
    {                                                                          \
        T *base = (T *)(void *)w->data;                                        \
        walk_pos p;                                                            \
        walk_begin(&p, w);                                                     \
        for (int64_t k = 0; k < w->numel; k++) {                               \
            base[p.pos] = fma_##S(draw01_##S(g), width, from);                 \
            walk_next(&p, w);                                                  \
        }                                                                      \
    }                                                                          \
    static void normal_scalar_##S(cg_generator *g, const walk *w, double mean, \
                                  double std)                                  \
    {                                                                          \
        T *base = (T *)(void *)w->data;                                        \
        walk_pos p;                                                            \
        walk_begin(&p, w);                                                     \
        for (int64_t k = 0; k < w->numel; k++) {                               \
            base[p.pos] = (T)fma(normal_sample(g), std, mean);                 \
            walk_next(&p, w);                                                  \
        }                                                                      \
    }                                                                          \
    static void normal_blocks_##S(cg_generator *g, T *data, int64_t n, T mean, \
                                  T std)                                       \
    {                                                                          \
        for (int64_t k = 0; k < n; k++)                                        \
            data[k] = draw01_##S(g);                                           \
        for (int64_t i = 0; i < n - 15; i += 16)                               \
            block16_##S(data + i, mean, std);                                  \
        if (n % 16 != 0) { /* the last 16 slots, with fresh uniforms */        \
            T *tail = data + n - 16;                                           \
            for (int k = 0; k < 16; k++)                                       \
                tail[k] = draw01_##S(g);                                       \
            block16_##S(tail, mean, std);                                      \
        }                                                                      \
    }

RNG_KERNELS(f32, float)
RNG_KERNELS(f64, double)

#undef RNG_KERNELS

/* ======================================================================
 * uniform_ and normal_
 * ====================================================================== */

static cg_status overlap_error(void)
{
    return cg__error(CG_ERR_RUNTIME,
                     "unsupported operation: more than one element of the "
                     "written-to tensor refers to a single memory location. "
                     "Please clone() the tensor before performing the "
                     "operation.");
}

/* uniform_impl_'s checks on the real dtype, in PyTorch's order. Doubles
 * print as C++ streams print them (%g: 2 -> "2", 1e-07, 1.23457e+06). */
static cg_status check_uniform(cg_dtype real, double from, double to)
{
    bool f32 = real == CG_FLOAT32;
    double hi = f32 ? (double)FLT_MAX : DBL_MAX;
    const char *meta = f32 ? "float" : "double";
    if (!(from >= -hi && from <= hi))
        return cg__error(CG_ERR_RUNTIME, "from is out of bounds for %s", meta);
    if (!(to >= -hi && to <= hi))
        return cg__error(CG_ERR_RUNTIME, "to is out of bounds for %s", meta);
    if (!(from <= to))
        return cg__error(CG_ERR_RUNTIME,
                         "uniform_ expects to return a [from, to) range, but "
                         "found from=%g > to=%g",
                         from, to);
    if (!(to - from <= hi))
        return cg__error(CG_ERR_RUNTIME,
                         "uniform_ expects to-from <= std::numeric_limits<%s>"
                         "::max(), but found to=%g and from=%g which result "
                         "in to-from to exceed the limit",
                         cg__dtype_scalar_name(real), to, from);
    return CG_OK;
}

/* Validates, then draws; on failure nothing has changed. */
static cg_status uniform_fill(cg_tensor *t, double from, double to,
                              cg_generator *g)
{
    walk w;
    walk_init(&w, t);
    cg_status st = check_uniform(w.real, from, to);
    if (st != CG_OK)
        return st;
    if (w.numel == 0)
        return CG_OK;
    if (w.overlap)
        return overlap_error();
    g = gen_or_default(g);
    if ((st = gen_lock(g)) != CG_OK)
        return st;
    if (w.real == CG_FLOAT32) {
        float a = (float)from, b = (float)to;
        uniform_f32(g, &w, a, b - a);
    } else {
        uniform_f64(g, &w, from, to - from);
    }
    gen_unlock(g);
    return CG_OK;
}

static cg_status normal_fill(cg_tensor *t, double mean, double std,
                             cg_generator *g)
{
    if (!(std >= 0.0))
        return cg__error(CG_ERR_RUNTIME,
                         "normal expects std >= 0.0, but found std %g", std);
    walk w;
    walk_init(&w, t);
    if (cg_dtype_is_complex(t->dtype))
        std = std / sqrt(2.0); /* each part gets half the variance */
    if (w.numel == 0)
        return CG_OK;
    if (w.overlap) /* never contiguous, so only path A would meet it */
        return overlap_error();
    bool blocks = w.numel >= 16 && w.contiguous;
    g = gen_or_default(g);
    cg_status st = gen_lock(g);
    if (st != CG_OK)
        return st;
    if (blocks && w.real == CG_FLOAT32)
        normal_blocks_f32(g, (float *)(void *)w.data + w.offset, w.numel,
                          (float)mean, (float)std);
    else if (blocks)
        normal_blocks_f64(g, (double *)(void *)w.data + w.offset, w.numel, mean,
                          std);
    else if (w.real == CG_FLOAT32)
        normal_scalar_f32(g, &w, mean, std);
    else
        normal_scalar_f64(g, &w, mean, std);
    gen_unlock(g);
    return CG_OK;
}

#define BERNOULLI_FILL(S, T)                                                   \
    static void bernoulli_##S(cg_generator *g, T *d, int64_t n, double q,      \
                              T value)                                         \
    {                                                                          \
        for (int64_t i = 0; i < n; i++) {                                      \
            uint64_t r = mt_next64(g);                                         \
            double u = (double)(r & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;      \
            d[i] = u < q ? value : (T)0;                                       \
        }                                                                      \
    }
BERNOULLI_FILL(f32, float)
BERNOULLI_FILL(f64, double)
#undef BERNOULLI_FILL

cg_status cg__bernoulli_fill(cg_tensor *t, double q, double value,
                             cg_generator *g)
{
    int64_t n = cg_tensor_numel(t);
    if (n == 0)
        return CG_OK;
    g = gen_or_default(g);
    cg_status st = gen_lock(g);
    if (st != CG_OK)
        return st;
    if (t->dtype == CG_FLOAT32)
        bernoulli_f32(g, (float *)cg_tensor_data(t), n, q, (float)value);
    else
        bernoulli_f64(g, (double *)cg_tensor_data(t), n, q, value);
    gen_unlock(g);
    return CG_OK;
}

cg_status cg_tensor_uniform_(cg_tensor *t, double from, double to,
                             cg_generator *g)
{
    if (!t)
        return cg__error_null("tensor");
    cg_status st = cg__check_inplace(t, "uniform_");
    if (st != CG_OK)
        return st;
    if ((st = uniform_fill(t, from, to, g)) != CG_OK)
        return st;
    cg__bump_version(t);
    return CG_OK;
}

cg_status cg_tensor_normal_(cg_tensor *t, double mean, double std,
                            cg_generator *g)
{
    if (!t)
        return cg__error_null("tensor");
    cg_status st = cg__check_inplace(t, "normal_");
    if (st != CG_OK)
        return st;
    if ((st = normal_fill(t, mean, std, g)) != CG_OK)
        return st;
    cg__bump_version(t);
    return CG_OK;
}

/* ======================================================================
 * rand and randn: torch.empty(...) then uniform_(0, 1) / normal_(0, 1)
 * ====================================================================== */

static cg_status random_tensor(const int64_t *shape, int ndim, cg_dtype dt,
                               cg_generator *g, bool normal, cg_tensor **out)
{
    if (!out)
        return cg__error_null("out");
    cg_tensor *t = NULL;
    cg_status st = cg__tensor_new(shape, ndim, dt, &t);
    if (st != CG_OK)
        return st;
    st = normal ? normal_fill(t, 0.0, 1.0, g) : uniform_fill(t, 0.0, 1.0, g);
    if (st != CG_OK) {
        cg_tensor_release(t);
        return st;
    }
    *out = t;
    return CG_OK;
}

cg_status cg_rand(const int64_t *shape, int ndim, cg_dtype dt, cg_generator *g,
                  cg_tensor **out)
{
    return random_tensor(shape, ndim, dt, g, false, out);
}

cg_status cg_randn(const int64_t *shape, int ndim, cg_dtype dt, cg_generator *g,
                   cg_tensor **out)
{
    return random_tensor(shape, ndim, dt, g, true, out);
}
