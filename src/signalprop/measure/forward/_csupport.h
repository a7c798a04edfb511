/* Shared by the C accelerators of signalprop.measure (_cmoments.c, _cfused.c).
 * Include after <Python.h>. */
#ifndef SIGNALPROP_CSUPPORT_H
#define SIGNALPROP_CSUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SERIAL_BELOW 32768 /* elements; smaller tensors are not worth waking threads */

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

/* How one call spreads over threads: by rows (the outer index, whole images of an NCHW
 * tensor) when there are at least as many as threads, so that each core reads and writes
 * the images it owns, as torch's flat split of element-wise ops does (splitting by
 * channels made the next layer fetch half its input from the other core: 2-4x slower
 * in place); else by channel ranges. Splitting rows, every thread keeps its own
 * channel-sum array (`parts` of them), added after the parallel region. */
typedef struct {
    int threads, by_rows;
    int64_t parts;
} split_t;

static inline split_t plan_split(int64_t outer, int64_t channels, int64_t inner,
                                 int threads) {
#ifdef _OPENMP
    if (outer * channels * inner < SERIAL_BELOW || threads < 1) threads = 1;
#else
    (void)inner;
    threads = 1;
#endif
    split_t s = {threads, outer >= threads, 1};
    if (!s.by_rows && s.threads > channels) s.threads = (int)channels;
    if (s.by_rows) s.parts = s.threads;
    return s;
}

/* Thread t of nt: rows [*o0, *o1), channels [*c0, *c1), and which channel-sum array. */
static inline void split_share(split_t s, int t, int nt, int64_t outer, int64_t channels,
                               int64_t *o0, int64_t *o1, int64_t *c0, int64_t *c1,
                               int64_t *part) {
    *o0 = s.by_rows ? outer * t / nt : 0;
    *o1 = s.by_rows ? outer * (t + 1) / nt : outer;
    *c0 = s.by_rows ? 0 : channels * t / nt;
    *c1 = s.by_rows ? channels : channels * (t + 1) / nt;
    *part = s.by_rows ? t : 0;
}

/* sum_c (sum_p sums[p * stride + c])^2: squared channel totals over the parts. */
static inline double squared_totals(const double *sums, int64_t channels, int64_t stride,
                                    int64_t parts) {
    /* four accumulators: the sum is not one chain of dependent adds (which made this
     * loop cost as much as the data on small maps with thousands of channels) */
    double sq[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t c = 0;
    for (; c + 4 <= channels; c += 4)
        for (int k = 0; k < 4; k++) {
            double t = 0.0;
            for (int64_t p = 0; p < parts; p++) t += sums[p * stride + c + k];
            sq[k] += t * t;
        }
    for (; c < channels; c++) {
        double t = 0.0;
        for (int64_t p = 0; p < parts; p++) t += sums[p * stride + c];
        sq[0] += t * t;
    }
    return (sq[0] + sq[1]) + (sq[2] + sq[3]);
}

/* The checked interface of the kernels: every tensor arrives as an object with the
 * buffer protocol (a NumPy view of a CPU tensor) and is accepted only if it is a
 * C-contiguous float32 or float64 buffer of exactly outer * channels * inner elements
 * (and writable where the kernel writes), so no call with wrong sizes can read or write
 * out of bounds. On success *view holds the buffer (release it with PyBuffer_Release)
 * and *is_double tells its element type; on failure a Python exception is set
 * (ValueError naming the argument; TypeError for an object without the buffer protocol)
 * and -1 is returned with nothing held. */
static int get_float_buffer(PyObject *obj, const char *name, int writable, int64_t outer,
                            int64_t channels, int64_t inner, Py_buffer *view,
                            int *is_double) {
    if (outer <= 0 || channels <= 0 || inner <= 0) {
        PyErr_Format(PyExc_ValueError,
                     "outer, channels and inner must be positive, got %lld, %lld, %lld",
                     (long long)outer, (long long)channels, (long long)inner);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_RECORDS_RO) < 0) return -1;
    const char *format = view->format ? view->format : "B", *f = format;
    if (*f == '@' || *f == '=') f++;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (*f == '<') f++;
#endif
    *is_double = strcmp(f, "d") == 0 && view->itemsize == 8;
    if (!*is_double && !(strcmp(f, "f") == 0 && view->itemsize == 4)) {
        PyErr_Format(PyExc_ValueError, "%s must hold float32 or float64 values, got format "
                     "'%s' with itemsize %zd", name, format, view->itemsize);
    } else if (!PyBuffer_IsContiguous(view, 'C')) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous", name);
    } else if (writable && view->readonly) {
        PyErr_Format(PyExc_ValueError, "%s must be writable", name);
    } else {
        int64_t n = (int64_t)(view->len / view->itemsize);
        /* outer * channels * inner == n, without overflowing */
        if (outer <= n && channels <= n / outer && inner <= n / (outer * channels) &&
            outer * channels * inner == n)
            return 0;
        PyErr_Format(PyExc_ValueError,
                     "%s holds %lld elements, not outer * channels * inner = %lld * %lld * "
                     "%lld", name, (long long)n, (long long)outer, (long long)channels,
                     (long long)inner);
    }
    PyBuffer_Release(view);
    return -1;
}

#endif
