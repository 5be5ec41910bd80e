/* Which instruction set fipsc's hand-written kernels use, chosen at run time.
 *
 * The kernels that OpenBLAS does not provide (the sparse gather of FiPS's V, short-row GEMV,
 * F16 conversion) have a portable C version, which every x86-64 CPU runs, an AVX2 version
 * (AVX2 + FMA + F16C: Intel Haswell, AMD Zen and later) and, for the bitmap lists of V, an AVX-512
 * version (F, BW, VL and VBMI2, whose expand-load turns 16 bits of a bitmap into 16 lanes: Intel
 * Ice Lake and Sapphire Rapids, AMD Zen 4 and later; not Skylake-X or Cascade Lake) and, above
 * it, an AVX-512 BF16 level (its dot product of bfloat16 pairs: Cooper Lake, Sapphire Rapids, Zen 4
 * and later), compiled into every build with function target attributes, whatever -march says. The first call picks the best level this CPU has; a
 * program can lower it (tests force each level in turn, the CLI reads FIPSC_ISA) but never raise it
 * above what the CPU runs.
 *
 * The levels give equal results up to float rounding, not bit for bit: the AVX2 gather sums eight
 * products per step where the portable one sums four. Within one level results do not depend on
 * the thread count. Byte-identity tests pin the portable level (as they pin OpenBLAS's kernels).
 * The AVX-512 BF16 level differs by more than the order of a sum, in one place: the V step through
 * a bitmap V whose values are BF16 (one row or a batch) rounds its input (x·U, or the hidden rows)
 * to bfloat16, as its dot-product instruction takes them (src/ops/factored_gather.h says what that
 * costs). */
#ifndef FIPSC_ISA_H
#define FIPSC_ISA_H

#include <stdbool.h>

#include "core/status.h"

typedef enum {
    FIPSC_ISA_PORTABLE = 0, /* C only, any x86-64 (or other) CPU */
    FIPSC_ISA_AVX2 = 1,     /* AVX2, FMA and F16C */
    FIPSC_ISA_AVX512 = 2,   /* the above and AVX-512 F, BW, VL, VBMI2 */
    FIPSC_ISA_AVX512_BF16 = 3, /* the above and AVX-512 BF16 */
    FIPSC_ISA_COUNT
} fipsc_isa;

/* Whether this build has kernels for isa on x86-64 and the CPU and OS run them. */
bool fipsc_isa_supported(fipsc_isa isa);

/* The highest supported level. */
fipsc_isa fipsc_isa_best(void);

/* The level the kernels use now: fipsc_isa_best() until fipsc_isa_set changes it. Cheap: read it
 * once per kernel call, not per element. */
fipsc_isa fipsc_isa_active(void);

/* Makes the kernels of every thread use isa from the next call on; refuses a level the CPU does
 * not support (FIPSC_ERR_UNSUPPORTED, naming it). Not meant to be changed while kernels run. */
fipsc_status fipsc_isa_set(fipsc_isa isa, fipsc_error *err);

/* "portable", "avx2", "avx512", "avx512bf16" */
const char *fipsc_isa_name(fipsc_isa isa);

/* Parses a name of fipsc_isa_name (also "best"): the level, or FIPSC_ERR_ARG listing the names. */
fipsc_status fipsc_isa_parse(const char *name, fipsc_isa *isa, fipsc_error *err);

/* Function attributes for the AVX2 and AVX-512 levels' kernels (x86 only). */
#if defined(__x86_64__) || defined(__i386__)
#define FIPSC_HAVE_AVX2_KERNELS 1
#define FIPSC_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define FIPSC_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,popcnt,avx512f,avx512bw,avx512vl,avx512vbmi2")))
#define FIPSC_TARGET_AVX512_BF16 \
    __attribute__((target("avx2,fma,f16c,popcnt,avx512f,avx512bw,avx512vl,avx512vbmi2,avx512bf16")))
#else
#define FIPSC_HAVE_AVX2_KERNELS 0
#define FIPSC_TARGET_AVX2
#define FIPSC_TARGET_AVX512
#define FIPSC_TARGET_AVX512_BF16
#endif

#endif
