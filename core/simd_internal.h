/*
 * simd_internal.h -- which vector instruction set the kernels use.
 * Never installed.
 *
 * Every kernel with vector variants also has a portable C variant that is
 * always built. The CPU is asked once (cpuid, through the compiler's
 * __builtin_cpu_supports) which variants it can run; the environment
 * variable CGRAD_SIMD=off|avx2|avx512 lowers the choice (never raises it
 * above what the CPU has), so `CGRAD_SIMD=off` forces the portable path.
 * Vector variants are compiled per function with target attributes, never
 * with global -m flags, so one binary runs on every x86-64 CPU (and other
 * architectures build only the portable variants).
 */
#ifndef CGRAD_SIMD_INTERNAL_H
#define CGRAD_SIMD_INTERNAL_H

#include <stdbool.h>

/** Instruction-set levels, each including the ones below it. Values are
 *  fixed; new levels are only appended before CG_SIMD_COUNT. */
typedef enum cg_simd {
    CG_SIMD_PORTABLE = 0, /* plain C */
    CG_SIMD_AVX2 = 1,     /* AVX2 + FMA (Haswell, Zen 1 and later) */
    CG_SIMD_AVX512 = 2,   /* AVX-512 F + VL (Skylake-SP, Zen 4 and later) */
    CG_SIMD_COUNT
} cg_simd;

/** "portable", "avx2", "avx512" (as CGRAD_SIMD spells them; "off" is
 *  accepted there for "portable"); NULL out of range. */
const char *cg__simd_name(cg_simd level);
/** Parses a CGRAD_SIMD value ("off", "portable", "avx2", "avx512");
 *  false when it is none of them. */
bool cg__simd_parse(const char *text, cg_simd *out);
/** The best level this CPU (and its OS) supports, asked once. */
cg_simd cg__simd_detected(void);
/** The level kernels use now: the override if one is set, else CGRAD_SIMD
 *  (read once; unknown values are ignored), else the detected level --
 *  always capped at the detected level. */
cg_simd cg__simd_level(void);
/** Sets the override (tests and the benchmark program use it to run each
 *  path in turn); CG_SIMD_COUNT removes it. Returns the previous override
 *  (CG_SIMD_COUNT when none). Process-wide; set it while no kernel runs. */
cg_simd cg__simd_override(cg_simd level);

#endif /* CGRAD_SIMD_INTERNAL_H */
