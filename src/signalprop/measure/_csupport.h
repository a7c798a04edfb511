/* Shared by the C accelerators of signalprop.measure (_cmoments.c, _cfused.c). */
#ifndef SIGNALPROP_CSUPPORT_H
#define SIGNALPROP_CSUPPORT_H

#include <stddef.h>
#include <stdlib.h>

/* 32-byte vectors: one AVX register, or two SSE registers on the generic target. */
typedef float v8f __attribute__((vector_size(32)));
typedef double v4d __attribute__((vector_size(32)));

/* Sum of a vector's lanes, returned in double (float lanes summed pairwise in float). */
static inline double hsum_v8f(v8f v) {
    float t = ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7]));
    return (double)t;
}
static inline double hsum_v4d(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* Per-thread scratch that only grows and is never freed: no heap traffic per call, so the
 * allocator's state (and with it torch's allocation costs) is left alone. */
static _Thread_local double *scratch_buf = NULL;
static _Thread_local size_t scratch_len = 0;

static inline double *scratch(size_t n) {
    if (n > scratch_len) {
        double *p = realloc(scratch_buf, n * sizeof(double));
        if (p == NULL) return NULL;
        scratch_buf = p;
        scratch_len = n;
    }
    return scratch_buf;
}

/* A second grow-only buffer, for the calling thread to share with its OpenMP team (each
 * team member keeps its own scratch() for private work). */
static _Thread_local double *shared_buf = NULL;
static _Thread_local size_t shared_len = 0;

static inline double *shared_scratch(size_t n) {
    if (n > shared_len) {
        double *p = realloc(shared_buf, (n ? n : 1) * sizeof(double));
        if (p == NULL) return NULL;
        shared_buf = p;
        shared_len = n;
    }
    return shared_buf;
}

#endif
