/*
 * cpu.c — run-time CPU feature detection for the executor's fast kernels (nn layer). The AVX-512 kernels are
 * compiled with per-function target attributes, so the library itself still runs on any x86-64; fast.c asks
 * here once which kernels this CPU can execute and falls back to the reference kernels otherwise.
 */
#include "nn/fast.h"

int fk__cpu_avx512(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    static int cached = -1; /* benign race: every thread computes the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                 __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}
