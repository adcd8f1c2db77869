/*
 * simd.c -- CPU feature detection and the CGRAD_SIMD override (see
 * simd_internal.h). Asked once per process; the answer is cached.
 */
#include "simd_internal.h"

#include "cgrad.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cg_simd detected = CG_SIMD_PORTABLE;
static cg_simd from_env = CG_SIMD_COUNT; /* none */
static atomic_int override_level = CG_SIMD_COUNT;

static const char *const names[CG_SIMD_COUNT] = {"portable", "avx2", "avx512"};

const char *cg__simd_name(cg_simd level)
{
    return (unsigned)level < CG_SIMD_COUNT ? names[level] : NULL;
}

bool cg__simd_parse(const char *text, cg_simd *out)
{
    if (!text)
        return false;
    if (strcmp(text, "off") == 0) {
        *out = CG_SIMD_PORTABLE;
        return true;
    }
    for (int i = 0; i < CG_SIMD_COUNT; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (cg_simd)i;
            return true;
        }
    return false;
}

static void detect(void)
{
#if (defined(__x86_64__) || defined(__i386__)) &&                              \
    (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the registers
     * (XCR0), so a feature reported here is usable. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        detected = CG_SIMD_AVX2;
        if (__builtin_cpu_supports("avx512f") &&
            __builtin_cpu_supports("avx512vl"))
            detected = CG_SIMD_AVX512;
    }
#endif
    cg_simd env;
    if (cg__simd_parse(getenv("CGRAD_SIMD"), &env))
        from_env = env;
}

cg_simd cg__simd_detected(void)
{
    pthread_once(&once, detect);
    return detected;
}

cg_simd cg__simd_level(void)
{
    pthread_once(&once, detect);
    cg_simd want = (cg_simd)atomic_load(&override_level);
    if (want == CG_SIMD_COUNT)
        want = from_env;
    if (want == CG_SIMD_COUNT || want > detected)
        want = detected;
    return want;
}

cg_simd cg__simd_override(cg_simd level)
{
    if ((unsigned)level > CG_SIMD_COUNT)
        level = CG_SIMD_COUNT;
    return (cg_simd)atomic_exchange(&override_level, (int)level);
}

const char *cg_get_cpu_capability(void)
{
    static const char *const caps[CG_SIMD_COUNT] = {"DEFAULT", "AVX2",
                                                    "AVX512"};
    return caps[cg__simd_level()];
}
