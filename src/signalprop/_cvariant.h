/* Which instruction-set variant a C accelerator runs (shared by optim/_cqstep.c and
 * nn/hypercomplex/_cphm.c; include after <Python.h>). Each kernel is compiled three
 * times: generic, AVX2 + FMA (FMA_ATTR) and AVX-512 (AVX512_ATTR); current_variant()
 * picks the best one this CPU runs, or a lower one forced by set_variant() (tests). */
#ifndef SIGNALPROP_CVARIANT_H
#define SIGNALPROP_CVARIANT_H

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_FMA_TARGET 1
#define FMA_ATTR __attribute__((target("avx2,fma")))
#define AVX512_ATTR                                                                        \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,"                   \
                          "prefer-vector-width=512")))
#endif

/* The variant set_variant() asked for (-1: the best this CPU runs). */
static int forced_variant = -1;

/* The best variant this CPU runs: 2 AVX-512 (F, DQ, VL, BW) with FMA; 1 AVX2 with FMA;
 * 0 generic. */
static int best_variant(void) {
#ifdef HAVE_FMA_TARGET
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        if (cached && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
            cached = 2;
    }
    return cached;
#else
    return 0;
#endif
}

static int current_variant(void) {
    int best = best_variant();
    return forced_variant >= 0 && forced_variant < best ? forced_variant : best;
}

/* For tests: run variant v (0 generic, 1 AVX2 + FMA, 2 AVX-512) where the CPU has it, or
 * the best one (v = -1); returns the variant that runs now. */
static PyObject *set_variant(PyObject *self, PyObject *args) {
    int v;
    (void)self;
    if (!PyArg_ParseTuple(args, "i", &v)) return NULL;
    if (v < -1 || v > 2) {
        PyErr_Format(PyExc_ValueError, "variant must be -1, 0, 1 or 2, got %d", v);
        return NULL;
    }
    forced_variant = v;
    return PyLong_FromLong(current_variant());
}

#endif
