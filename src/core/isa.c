/* Run-time choice of the kernels' instruction set (see src/core/isa.h). */
#include "core/isa.h"

#include <string.h>
#if FIPSC_HAVE_AVX2_KERNELS
#include <cpuid.h>
#endif

static const char *const isa_names[FIPSC_ISA_COUNT] = {[FIPSC_ISA_PORTABLE] = "portable", [FIPSC_ISA_AVX2] = "avx2",
                                                        [FIPSC_ISA_AVX512] = "avx512", [FIPSC_ISA_AVX512_BF16] = "avx512bf16"};

/* -1 until the first call decides: the best level, or what fipsc_isa_set chose. Relaxed atomics:
 * a kernel reads one value per call, and every value stored is a supported level. */
static int active_isa = -1;

#if FIPSC_HAVE_AVX2_KERNELS
/* F16C from CPUID leaf 1 (clang 14's __builtin_cpu_supports does not know the name). */
static bool cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

/* AVX-512 BF16 from CPUID leaf 7, sub-leaf 1, EAX bit 5, where sub-leaf 0 says sub-leaf 1 exists
 * (clang 14's __builtin_cpu_supports does not know the name either). */
static bool cpu_has_avx512_bf16(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || a < 1) return false;
    __cpuid_count(7, 1, a, b, c, d);
    return (a & (1u << 5)) != 0;
}
#endif

bool fipsc_isa_supported(fipsc_isa isa)
{
    switch (isa) {
    case FIPSC_ISA_PORTABLE: return true;
    case FIPSC_ISA_AVX2:
#if FIPSC_HAVE_AVX2_KERNELS
        /* GCC and Clang check the OS saves the YMM registers (XGETBV) before reporting AVX2 */
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
#else
        return false;
#endif
    case FIPSC_ISA_AVX512:
#if FIPSC_HAVE_AVX2_KERNELS
        /* ... and that it saves the ZMM and mask registers before reporting AVX-512 */
        return fipsc_isa_supported(FIPSC_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vbmi2") && __builtin_cpu_supports("popcnt");
#else
        return false;
#endif
    case FIPSC_ISA_AVX512_BF16:
#if FIPSC_HAVE_AVX2_KERNELS
        return fipsc_isa_supported(FIPSC_ISA_AVX512) && cpu_has_avx512_bf16();
#else
        return false;
#endif
    default: return false;
    }
}

fipsc_isa fipsc_isa_best(void)
{
    for (int i = FIPSC_ISA_COUNT - 1; i > 0; i--)
        if (fipsc_isa_supported((fipsc_isa)i)) return (fipsc_isa)i;
    return FIPSC_ISA_PORTABLE;
}

fipsc_isa fipsc_isa_active(void)
{
    int isa = __atomic_load_n(&active_isa, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = (int)fipsc_isa_best();
        int unset = -1; /* a concurrent fipsc_isa_set wins */
        if (!__atomic_compare_exchange_n(&active_isa, &unset, isa, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            isa = unset;
    }
    return (fipsc_isa)isa;
}

fipsc_status fipsc_isa_set(fipsc_isa isa, fipsc_error *err)
{
    if ((unsigned)isa >= FIPSC_ISA_COUNT) return fipsc_fail(err, FIPSC_ERR_ARG, "instruction set %d does not exist", (int)isa);
    if (!fipsc_isa_supported(isa))
        return fipsc_fail(err, FIPSC_ERR_UNSUPPORTED, "this CPU does not run fipsc's %s kernels (it runs up to %s)",
                          fipsc_isa_name(isa), fipsc_isa_name(fipsc_isa_best()));
    __atomic_store_n(&active_isa, (int)isa, __ATOMIC_RELAXED);
    return FIPSC_OK;
}

const char *fipsc_isa_name(fipsc_isa isa) { return (unsigned)isa < FIPSC_ISA_COUNT ? isa_names[isa] : "?"; }

fipsc_status fipsc_isa_parse(const char *name, fipsc_isa *isa, fipsc_error *err)
{
    if (strcmp(name, "best") == 0) {
        *isa = fipsc_isa_best();
        return FIPSC_OK;
    }
    for (int i = 0; i < FIPSC_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) {
            *isa = (fipsc_isa)i;
            return FIPSC_OK;
        }
    return fipsc_fail(err, FIPSC_ERR_ARG, "unknown instruction set '%s' (best, portable, avx2, avx512, avx512bf16)", name);
}
