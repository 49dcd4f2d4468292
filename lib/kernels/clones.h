/* BIO_CLONES: compile a function (and what is inlined into it) for AVX-512, AVX2 and baseline
 * x86-64, picked at load time by the CPU (GCC's target_clones, an ifunc). For the elementwise and
 * reduction loops of the layers and the optimizer, which are written as fixed blocks of lanes:
 * without -ffast-math the compiler keeps every operation and its order, so each clone gives the
 * same bits (no FMA: ISO C mode does not contract). Other compilers get the baseline version. */
#ifndef BIO_KERNELS_CLONES_H
#define BIO_KERNELS_CLONES_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(BIO_NO_CLONES)
#define BIO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BIO_CLONES
#endif

#endif
