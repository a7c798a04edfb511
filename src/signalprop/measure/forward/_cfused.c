/* Residual add with statistics, for spp() on signalprop's residual blocks (optional C
 * accelerator, companion of _cmoments.c).
 *
 * residual_add_sums(x, b, y, alpha, outer, channels, inner, threads) writes
 * y = x + alpha * b (one rounding, as torch.add does with FMA) for three contiguous
 * tensors laid out as (outer, channels, inner), passed as buffers (NumPy views) that
 * get_float_buffer() in _csupport.h checks (one element type, float32 or float64,
 * C-contiguous, exactly outer * channels * inner long, y writable), and returns
 * (sum_c B_c^2, sum b^2, sum_c Y_c^2, sum y^2), B_c and Y_c being channel sums. The add
 * reads b and writes y anyway, so the statistics of the branch and of the block output
 * cost no extra pass over memory. The caller checks once that y equals torch.add's
 * result bit for bit on this machine before using it (see _fused_add.py).
 * residual_add_sums_at() is the same add on memory given by address, for the one caller
 * (_fused_add.fused_sums) that checks the tensors right before it calls: inside a deep
 * forward, three NumPy views cost more than the add on a small late-stage map.
 *
 * Threads split as plan_split() in _csupport.h describes (by whole images, as
 * torch.add does, where there are enough). Long rows are processed in memory order with
 * sums in registers. Short rows (small maps) go in blocks of ROWS_PER_FLUSH rows: within
 * a block, strips of two vectors walk down the rows with their column sums in registers,
 * which are stored once per strip and folded into channel sums (doubles) once per block;
 * keeping the column sums in memory and updating them row by row instead cost a load
 * and a store per vector and ran at a third of torch.add's speed on 4 x 4 maps. Precision as in
 * _cmoments.c: float runs of at most RUN vector steps (or ROWS_PER_FLUSH rows per
 * column) folded into doubles.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "_csupport.h"

#define ROWS_FROM 64
#define BLOCK 2048
#define ROWS_PER_FLUSH 16
#define RUN 64

/* Lane-wise fused multiply-add: one rounding, vectorized where the target has FMA. */
#define DEFINE_FMA(NAME, ATTR, V, W, T, F)                                                 \
    ATTR static inline V NAME(V b, T a, V x) {                                             \
        V r;                                                                               \
        for (int l = 0; l < W; l++) r[l] = F(b[l], a, x[l]);                               \
        return r;                                                                          \
    }

/* cs[c] += the sum of INNER values of acc (doubles, in two interleaved halves so that
 * no long chain of dependent adds forms). */
#define FOLD_CHANNELS(ACC, N, INNER, CS)                                                   \
    for (int64_t c = 0; c < (N) / (INNER); c++) {                                          \
        double t0 = 0.0, t1 = 0.0;                                                         \
        int64_t i = 0;                                                                     \
        for (; i + 2 <= (INNER); i += 2) {                                                 \
            t0 += (double)(ACC)[c * (INNER) + i];                                          \
            t1 += (double)(ACC)[c * (INNER) + i + 1];                                      \
        }                                                                                  \
        if (i < (INNER)) t0 += (double)(ACC)[c * (INNER) + i];                             \
        (CS)[c] += t0 + t1;                                                                \
    }

/* Kernels for element type T (vector V of W lanes), compiled once per ATTR (a target
 * with FMA, and a generic one). */
#define DEFINE_KERNELS(SUFFIX, ATTR, T, V, W, HSUM, FMAV, FMAS)                            \
    /* cs[c] += sum of acc[c * inner + i] over i < inner, for the n / inner channels of  \
     * acc; a fixed trip count for the common small maps, so the loop vectorizes. */      \
    ATTR static void fold_##SUFFIX(const T *acc, int64_t n, int64_t inner, double *cs) {   \
        switch (inner) {                                                                   \
        case 1: FOLD_CHANNELS(acc, n, 1, cs); break;                                       \
        case 2: FOLD_CHANNELS(acc, n, 2, cs); break;                                       \
        case 4: FOLD_CHANNELS(acc, n, 4, cs); break;                                       \
        default: FOLD_CHANNELS(acc, n, inner, cs);                                         \
        }                                                                                  \
    }                                                                                      \
                                                                                           \
    static inline V load_##SUFFIX(const T *p) {                                            \
        V v;                                                                               \
        memcpy(&v, p, sizeof v);                                                           \
        return v;                                                                          \
    }                                                                                      \
                                                                                           \
    /* Long rows, in memory order; channel sums into cb/cy[c - c0]. Row sums are folded  \
     * per row; squares run across rows and are folded every RUN vector steps. */        \
    ATTR static void rows_##SUFFIX(const T *x, const T *b, T *y, T al, int64_t outer,      \
                                   int64_t channels, int64_t inner, int64_t c0,            \
                                   int64_t c1, double *cb, double *cy, double *out) {      \
        double qb = 0.0, qy = 0.0;                                                         \
        V pb = {0}, py = {0};                                                              \
        int64_t steps = 0, nfull = inner - inner % W;                                      \
        for (int64_t o = 0; o < outer; o++)                                                \
            for (int64_t c = c0; c < c1; c++) {                                            \
                int64_t off = (o * channels + c) * inner, j = 0;                           \
                const T *xr = x + off, *br = b + off;                                      \
                T *yr = y + off;                                                           \
                double sb = 0.0, sy = 0.0;                                                 \
                while (j < nfull) {                                                        \
                    V ab = {0}, ay = {0};                                                  \
                    int64_t end = j + RUN * W < nfull ? j + RUN * W : nfull;               \
                    steps += (end - j) / W;                                                \
                    for (; j < end; j += W) {                                              \
                        V bv = load_##SUFFIX(br + j);                                      \
                        V yv = FMAV(bv, al, load_##SUFFIX(xr + j));                        \
                        memcpy(yr + j, &yv, sizeof yv);                                    \
                        ab += bv;                                                          \
                        ay += yv;                                                          \
                        pb += bv * bv;                                                     \
                        py += yv * yv;                                                     \
                    }                                                                      \
                    sb += HSUM(ab);                                                        \
                    sy += HSUM(ay);                                                        \
                    if (steps >= RUN) {                                                    \
                        qb += HSUM(pb);                                                    \
                        qy += HSUM(py);                                                    \
                        pb = py = (V){0};                                                  \
                        steps = 0;                                                         \
                    }                                                                      \
                }                                                                          \
                for (; j < inner; j++) {                                                   \
                    T bv = br[j], yv = FMAS(bv, al, xr[j]);                                \
                    yr[j] = yv;                                                            \
                    sb += (double)bv;                                                      \
                    sy += (double)yv;                                                      \
                    qb += (double)bv * (double)bv;                                         \
                    qy += (double)yv * (double)yv;                                         \
                }                                                                          \
                cb[c - c0] += sb;                                                          \
                cy[c - c0] += sy;                                                          \
            }                                                                              \
        out[0] += qb + HSUM(pb);                                                           \
        out[1] += qy + HSUM(py);                                                           \
    }                                                                                      \
                                                                                           \
    /* Short rows: columns [k0, k0 + n) (whole channels), in blocks of ROWS_PER_FLUSH    \
     * rows; within a block, strips of 2W columns walk down the rows with their sums in  \
     * registers (float runs of at most ROWS_PER_FLUSH rows), stored into acc (2n values \
     * of T), which is folded into the channel sums cb, cy (doubles) once per block. */  \
    ATTR static void cols_##SUFFIX(const T *x, const T *b, T *y, T al, int64_t outer,      \
                                   int64_t K, int64_t k0, int64_t n, int64_t inner,        \
                                   double *cb, double *cy, T *acc, double *out) {          \
        double qb = 0.0, qy = 0.0;                                                         \
        T *accb = acc, *accy = acc + n;                                                    \
        V pb = {0}, py = {0};                                                              \
        int64_t steps = 0;                                                                 \
        for (int64_t o0 = 0; o0 < outer; o0 += ROWS_PER_FLUSH) {                           \
            int64_t o1 = o0 + ROWS_PER_FLUSH < outer ? o0 + ROWS_PER_FLUSH : outer;       \
            int64_t j = 0;                                                                 \
            for (; j + 2 * W <= n; j += 2 * W) {                                           \
                V sb0 = {0}, sb1 = {0}, sy0 = {0}, sy1 = {0};                              \
                const T *xr = x + o0 * K + k0 + j, *br = b + o0 * K + k0 + j;              \
                T *yr = y + o0 * K + k0 + j;                                               \
                for (int64_t o = o0; o < o1; o++, xr += K, br += K, yr += K) {             \
                    V b0 = load_##SUFFIX(br), b1 = load_##SUFFIX(br + W);                  \
                    V y0 = FMAV(b0, al, load_##SUFFIX(xr));                                \
                    V y1 = FMAV(b1, al, load_##SUFFIX(xr + W));                            \
                    memcpy(yr, &y0, sizeof y0);                                            \
                    memcpy(yr + W, &y1, sizeof y1);                                        \
                    sb0 += b0;                                                             \
                    sb1 += b1;                                                             \
                    sy0 += y0;                                                             \
                    sy1 += y1;                                                             \
                    pb += b0 * b0 + b1 * b1;                                               \
                    py += y0 * y0 + y1 * y1;                                               \
                }                                                                          \
                memcpy(accb + j, &sb0, sizeof sb0);                                        \
                memcpy(accb + j + W, &sb1, sizeof sb1);                                    \
                memcpy(accy + j, &sy0, sizeof sy0);                                        \
                memcpy(accy + j + W, &sy1, sizeof sy1);                                    \
                steps += o1 - o0;                                                          \
                if (steps >= RUN / 2) {                                                    \
                    qb += HSUM(pb);                                                        \
                    qy += HSUM(py);                                                        \
                    pb = py = (V){0};                                                      \
                    steps = 0;                                                             \
                }                                                                          \
            }                                                                              \
            for (; j < n; j++) {                                                           \
                T sb = 0, sy = 0;                                                          \
                for (int64_t o = o0; o < o1; o++) {                                        \
                    int64_t off = o * K + k0 + j;                                          \
                    T bv = b[off], yv = FMAS(bv, al, x[off]);                              \
                    y[off] = yv;                                                           \
                    sb += bv;                                                              \
                    sy += yv;                                                              \
                    qb += (double)bv * (double)bv;                                         \
                    qy += (double)yv * (double)yv;                                         \
                }                                                                          \
                accb[j] = sb;                                                              \
                accy[j] = sy;                                                              \
            }                                                                              \
            fold_##SUFFIX(accb, n, inner, cb);                                             \
            fold_##SUFFIX(accy, n, inner, cy);                                             \
        }                                                                                  \
        out[0] += qb + HSUM(pb);                                                           \
        out[1] += qy + HSUM(py);                                                           \
    }

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_FMA_TARGET 1
#define FMA_ATTR __attribute__((target("avx2,fma")))
/* The FMA-target variants: every fmaf becomes one vfmadd instruction. */
DEFINE_FMA(fma8_hw, FMA_ATTR, v8f, 8, float, __builtin_fmaf)
DEFINE_FMA(fma4_hw, FMA_ATTR, v4d, 4, double, __builtin_fma)
DEFINE_KERNELS(f32_fma, FMA_ATTR, float, v8f, 8, hsum_v8f, fma8_hw, __builtin_fmaf)
DEFINE_KERNELS(f64_fma, FMA_ATTR, double, v4d, 4, hsum_v4d, fma4_hw, __builtin_fma)
#endif
DEFINE_FMA(fma8, , v8f, 8, float, fmaf)
DEFINE_FMA(fma4, , v4d, 4, double, fma)
DEFINE_KERNELS(f32, , float, v8f, 8, hsum_v8f, fma8, fmaf)
DEFINE_KERNELS(f64, , double, v4d, 4, hsum_v4d, fma4, fma)

static int use_fma_target(void) {
#ifdef HAVE_FMA_TARGET
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
#else
    return 0;
#endif
}

typedef struct {
    const void *x, *b;
    void *y;
    double alpha;
    int is_double, fma;
    int64_t outer, channels, inner;
} job_t;

/* Rows [o0, o1) x channels [c0, c1): adds the channel sums of b and y to cb/cy[c - c0]
 * and the sums of squares to q[0], q[1]. Returns 0, or -1 without scratch memory. */
static int unit(const job_t *j, int64_t o0, int64_t o1, int64_t c0, int64_t c1,
                double *cb, double *cy, double *q) {
    int64_t inner = j->inner, outer = o1 - o0;
    size_t skip = (size_t)(o0 * j->channels * inner) * (j->is_double ? 8 : 4);
    const char *x = (const char *)j->x + skip, *b = (const char *)j->b + skip;
    char *y = (char *)j->y + skip;
    if (inner >= ROWS_FROM) {
#define ROWS(S, T)                                                                         \
    rows_##S((const T *)x, (const T *)b, (T *)y, (T)j->alpha, outer, j->channels, inner,  \
             c0, c1, cb, cy, q)
#ifdef HAVE_FMA_TARGET
        if (j->fma) {
            if (j->is_double) ROWS(f64_fma, double); else ROWS(f32_fma, float);
        } else
#endif
        if (j->is_double) ROWS(f64, double); else ROWS(f32, float);
#undef ROWS
        return 0;
    }
    double *acc = scratch(2 * BLOCK); /* 2 BLOCK values of T */
    if (acc == NULL) return -1;
    int64_t K = j->channels * inner, per_block = BLOCK / inner;
    for (int64_t c = c0; c < c1; c += per_block) {
        int64_t m = c1 - c < per_block ? c1 - c : per_block;
#define COLS(S, T)                                                                         \
    cols_##S((const T *)x, (const T *)b, (T *)y, (T)j->alpha, outer, K, c * inner,        \
             m * inner, inner, cb + (c - c0), cy + (c - c0), (T *)acc, q)
#ifdef HAVE_FMA_TARGET
        if (j->fma) {
            if (j->is_double) COLS(f64_fma, double); else COLS(f32_fma, float);
        } else
#endif
        if (j->is_double) COLS(f64, double); else COLS(f32, float);
#undef COLS
    }
    return 0;
}

/* The three buffers of one call, checked by get_float_buffer() (_csupport.h): x and b
 * read, y written, all of one element type and exactly outer * channels * inner long. */
static int get_buffers(PyObject *objs[3], int64_t outer, int64_t channels, int64_t inner,
                       Py_buffer views[3], int *is_double) {
    static const char *names[3] = {"x", "b", "y"};
    int k;
    for (k = 0; k < 3; k++) {
        int is_d;
        if (get_float_buffer(objs[k], names[k], k == 2, outer, channels, inner, &views[k],
                             &is_d) < 0)
            goto fail;
        if (k > 0 && is_d != *is_double) {
            PyErr_Format(PyExc_ValueError, "%s must have the element type of x (%s)",
                         names[k], *is_double ? "float64" : "float32");
            PyBuffer_Release(&views[k]);
            goto fail;
        }
        *is_double = is_d;
    }
    return 0;
fail:
    while (--k >= 0) PyBuffer_Release(&views[k]);
    return -1;
}

/* Runs one add (job) on `threads` threads; returns the four sums, or NULL with
 * MemoryError set. Releases the GIL while it works. */
static PyObject *run(const job_t *job, int threads) {
    int64_t outer = job->outer, C = job->channels;
    int failed = 0;
    split_t split = plan_split(outer, C, job->inner, threads);
    /* per part: channel sums of b, then of y; then per thread: its two sums of squares
     * (added in thread order afterwards, so the result does not depend on timing) */
    size_t nsums = (size_t)(2 * C * split.parts), nall = nsums + 2 * (size_t)split.threads;
    double *sums = shared_scratch(nall);
    if (sums == NULL) return PyErr_NoMemory();
    memset(sums, 0, nall * sizeof(double));
    double q0 = 0.0, q1 = 0.0, *partial = sums + nsums;
    Py_BEGIN_ALLOW_THREADS
    if (split.threads == 1) {
        double q[2] = {0.0, 0.0};
        failed = unit(job, 0, outer, 0, C, sums, sums + C, q);
        q0 = q[0], q1 = q[1];
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(split.threads) reduction(+ : failed)
        {
            int64_t o0, o1, c0, c1, part;
            int t = omp_get_thread_num();
            double q[2] = {0.0, 0.0};
            split_share(split, t, omp_get_num_threads(), outer, C, &o0, &o1, &c0, &c1, &part);
            double *own = sums + 2 * C * part + c0;
            failed += unit(job, o0, o1, c0, c1, own, own + C, q);
            partial[2 * t] = q[0], partial[2 * t + 1] = q[1];
        }
#endif
        for (int t = 0; t < split.threads; t++) q0 += partial[2 * t], q1 += partial[2 * t + 1];
    }
    Py_END_ALLOW_THREADS
    if (failed) return PyErr_NoMemory();
    return Py_BuildValue("(dddd)", squared_totals(sums, C, 2 * C, split.parts), q0,
                         squared_totals(sums + C, C, 2 * C, split.parts), q1);
}

static PyObject *residual_add_sums(PyObject *self, PyObject *args) {
    PyObject *objs[3];
    Py_buffer views[3];
    double alpha;
    int is_double = 0, threads;
    long long outer, channels, inner;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOdLLLi", &objs[0], &objs[1], &objs[2], &alpha, &outer,
                          &channels, &inner, &threads))
        return NULL;
    if (get_buffers(objs, outer, channels, inner, views, &is_double) < 0) return NULL;
    job_t job = {views[0].buf, views[1].buf, views[2].buf, alpha, is_double,
                 use_fma_target(), outer, channels, inner};
    PyObject *out = run(&job, threads);
    for (int k = 0; k < 3; k++) PyBuffer_Release(&views[k]);
    return out;
}

/* The same add on memory given by address: for _fused_add.fused_sums only, which checks
 * right before the call that the three tensors are contiguous CPU tensors of this dtype
 * holding exactly outer * channels * inner elements each (a NumPy view per tensor, as
 * residual_add_sums needs, costs more than the add itself on a small late-stage map). */
static PyObject *residual_add_sums_at(PyObject *self, PyObject *args) {
    unsigned long long xa, ba, ya;
    double alpha;
    int is_double, threads;
    long long outer, channels, inner;
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKpdLLLi", &xa, &ba, &ya, &is_double, &alpha, &outer,
                          &channels, &inner, &threads))
        return NULL;
    if (outer <= 0 || channels <= 0 || inner <= 0 || xa == 0 || ba == 0 || ya == 0) {
        PyErr_SetString(PyExc_ValueError, "sizes must be positive and addresses non-zero");
        return NULL;
    }
    job_t job = {(const void *)(uintptr_t)xa, (const void *)(uintptr_t)ba,
                 (void *)(uintptr_t)ya, alpha, is_double, use_fma_target(), outer, channels,
                 inner};
    return run(&job, threads);
}

static PyMethodDef methods[] = {
    {"residual_add_sums", residual_add_sums, METH_VARARGS,
     "residual_add_sums(x, b, y, alpha, outer, channels, inner, threads)"
     " -> (sum_c B_c^2, sum b^2, sum_c Y_c^2, sum y^2); writes y = x + alpha * b; x, b, y:"
     " C-contiguous buffers of one element type (float32/float64), y writable, each of"
     " outer * channels * inner elements"},
    {"residual_add_sums_at", residual_add_sums_at, METH_VARARGS,
     "residual_add_sums_at(x_addr, b_addr, y_addr, is_double, alpha, outer, channels, inner,"
     " threads): residual_add_sums on memory given by address; the caller has checked it"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cfused", "Residual add with channel statistics (optional).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cfused(void) { return PyModule_Create(&module); }
