/* One-pass per-channel sums for signalprop.measure.forward._moments (optional C accelerator).
 *
 * channel_sums(x, outer, channels, inner, threads) reads a contiguous tensor laid out as
 * (outer, channels, inner) once and returns (sum_c S_c^2, sum x^2), where S_c is the sum
 * of channel c. From these two numbers the caller forms the channel-averaged squared mean
 * and variance. x is a buffer (a NumPy view of the tensor) checked by get_float_buffer()
 * in _csupport.h: float32/float64, C-contiguous, exactly outer * channels * inner long.
 *
 * Long rows (inner >= ROWS_FROM) are reduced one by one, in memory order, with the sums
 * in vector registers. Short rows (small maps, channels-last) are added column-wise into
 * a scratch block that stays in cache, then folded per channel. Float32 input is summed
 * in short float runs (at most 64 terms per vector lane, at most ROWS_PER_FLUSH rows per
 * column) folded into double accumulators, so the relative error stays near 1e-7 (and
 * far below it on large tensors) whatever the tensor's size.
 *
 * Work is split over at most `threads` OpenMP threads (the caller passes
 * torch.get_num_threads()) as plan_split() in _csupport.h describes. Built with -fopenmp the module links libgomp.so.1,
 * which resolves to the copy torch has already loaded, so both share one thread pool.
 * Without OpenMP it runs on one thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "_csupport.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SP_CLONES
#endif

#define ROWS_FROM 64       /* inner size from which rows are reduced one by one */
#define BLOCK 4096         /* scratch columns for short rows (48 KiB with the doubles) */
#define ROWS_PER_FLUSH 16  /* rows summed in the input precision before folding */

/* The kernels, once per element type T with vector type V of W lanes. Float runs are
 * folded into doubles after at most RUN vector steps per lane. */
#define RUN 64
/* chsum[c] += sum of src[c * IN .. c * IN + IN) for the n / IN channels of a block;
 * a literal IN lets the compiler unroll and vectorize the common small map sizes. */
#define FOLD(src, IN, n, chsum)                                                            \
    do {                                                                                   \
        for (int64_t c = 0; c < (n) / (IN); c++) {                                         \
            double t = 0.0;                                                                \
            for (int64_t i = 0; i < (IN); i++) t += (double)(src)[c * (IN) + i];           \
            (chsum)[c] += t;                                                               \
        }                                                                                  \
    } while (0)
#define DEFINE_KERNELS(SUFFIX, T, V, W, HSUM)                                              \
    static inline V load_##SUFFIX(const T *p) {                                            \
        V v;                                                                               \
        memcpy(&v, p, sizeof v);                                                           \
        return v;                                                                          \
    }                                                                                      \
                                                                                           \
    /* Channels [c0, c1) as long rows, read in memory order: adds S_c to chsum[c - c0],    \
     * returns sum x^2. Row sums stay in registers; squares run across rows. */            \
    SP_CLONES static double rows_##SUFFIX(const T *x, int64_t outer, int64_t channels,     \
                                          int64_t inner, int64_t c0, int64_t c1,           \
                                          double *chsum) {                                 \
        double ss = 0.0;                                                                   \
        V q0 = {0}, q1 = {0};                                                              \
        int64_t steps = 0, nfull = inner - inner % (2 * W);                                \
        for (int64_t o = 0; o < outer; o++)                                                \
            for (int64_t c = c0; c < c1; c++) {                                            \
                const T *r = x + (o * channels + c) * inner;                               \
                double rs = 0.0;                                                           \
                int64_t j = 0;                                                             \
                while (j < nfull) {                                                        \
                    V a0 = {0}, a1 = {0};                                                  \
                    int64_t end = j + RUN * 2 * W < nfull ? j + RUN * 2 * W : nfull;       \
                    steps += (end - j) / (2 * W);                                          \
                    for (; j < end; j += 2 * W) {                                          \
                        V v = load_##SUFFIX(r + j), w = load_##SUFFIX(r + j + W);          \
                        a0 += v;                                                           \
                        a1 += w;                                                           \
                        q0 += v * v;                                                       \
                        q1 += w * w;                                                       \
                    }                                                                      \
                    rs += HSUM(a0 + a1);                                                   \
                    if (steps >= RUN) {                                                    \
                        ss += HSUM(q0 + q1);                                               \
                        q0 = q1 = (V){0};                                                  \
                        steps = 0;                                                         \
                    }                                                                      \
                }                                                                          \
                for (; j < inner; j++) {                                                   \
                    double v = (double)r[j];                                               \
                    rs += v;                                                               \
                    ss += v * v;                                                           \
                }                                                                          \
                chsum[c - c0] += rs;                                                       \
            }                                                                              \
        return ss + HSUM(q0 + q1);                                                         \
    }                                                                                      \
                                                                                           \
    /* Columns [k0, k0 + n) of the (outer, K) matrix, n a multiple of inner: adds the sum  \
     * of each of the n / inner channels to chsum, returns sum x^2. acc holds n values of  \
     * T and colsum n doubles (used only when outer > ROWS_PER_FLUSH). */                  \
    SP_CLONES static double cols_##SUFFIX(const T *x, int64_t outer, int64_t K,            \
                                          int64_t k0, int64_t n, int64_t inner,            \
                                          double *chsum, T *acc, double *colsum) {         \
        double ss = 0.0;                                                                   \
        int64_t nfull = n - n % W;                                                         \
        int single = outer <= ROWS_PER_FLUSH;                                              \
        if (!single)                                                                       \
            for (int64_t j = 0; j < n; j++) colsum[j] = 0.0;                               \
        for (int64_t o0 = 0; o0 < outer; o0 += ROWS_PER_FLUSH) {                           \
            int64_t o1 = o0 + ROWS_PER_FLUSH < outer ? o0 + ROWS_PER_FLUSH : outer;       \
            memcpy(acc, x + o0 * K + k0, (size_t)n * sizeof(T));                           \
            for (int64_t o = o0; o < o1; o++) {                                            \
                const T *r = x + o * K + k0;                                               \
                int64_t j = 0;                                                             \
                while (j < nfull) {                                                        \
                    V q = {0};                                                             \
                    int64_t end = j + RUN * W < nfull ? j + RUN * W : nfull;               \
                    if (o == o0)                                                           \
                        for (; j < end; j += W) {                                          \
                            V v = load_##SUFFIX(r + j);                                    \
                            q += v * v;                                                    \
                        }                                                                  \
                    else                                                                   \
                        for (; j < end; j += W) {                                          \
                            V v = load_##SUFFIX(r + j), a = load_##SUFFIX(acc + j);        \
                            a += v;                                                        \
                            memcpy(acc + j, &a, sizeof a);                                 \
                            q += v * v;                                                    \
                        }                                                                  \
                    ss += HSUM(q);                                                         \
                }                                                                          \
                for (; j < n; j++) {                                                       \
                    if (o != o0) acc[j] += r[j];                                           \
                    ss += (double)r[j] * (double)r[j];                                     \
                }                                                                          \
            }                                                                              \
            if (!single)                                                                   \
                for (int64_t j = 0; j < n; j++) colsum[j] += (double)acc[j];               \
        }                                                                                  \
        if (!single)                                                                       \
            FOLD(colsum, inner, n, chsum);                                                 \
        else if (inner == 1)                                                               \
            FOLD(acc, 1, n, chsum);                                                        \
        else if (inner == 2)                                                               \
            FOLD(acc, 2, n, chsum);                                                        \
        else if (inner == 4)                                                               \
            FOLD(acc, 4, n, chsum);                                                        \
        else if (inner == 8)                                                               \
            FOLD(acc, 8, n, chsum);                                                        \
        else if (inner == 16)                                                              \
            FOLD(acc, 16, n, chsum);                                                       \
        else                                                                               \
            FOLD(acc, inner, n, chsum);                                                    \
        return ss;                                                                         \
    }

DEFINE_KERNELS(f32, float, v8f, 8, hsum_v8f)
DEFINE_KERNELS(f64, double, v4d, 4, hsum_v4d)

/* Rows [o0, o1) x channels [c0, c1): adds the channel sums to chsum[c - c0] and the sum
 * of squares to *ss. Returns 0, or -1 without scratch memory. */
static int unit(const void *x0, int is_double, int64_t o0, int64_t o1, int64_t channels,
                int64_t inner, int64_t c0, int64_t c1, double *chsum, double *ss) {
    int64_t outer = o1 - o0;
    const void *x = (const char *)x0 + (size_t)(o0 * channels * inner) * (is_double ? 8 : 4);
    if (inner >= ROWS_FROM) {
        *ss += is_double
                   ? rows_f64((const double *)x, outer, channels, inner, c0, c1, chsum)
                   : rows_f32((const float *)x, outer, channels, inner, c0, c1, chsum);
        return 0;
    }
    /* blocks of whole channels: BLOCK / inner channels (inner < ROWS_FROM <= BLOCK) */
    double *colsum = scratch(2 * BLOCK);
    if (colsum == NULL) return -1;
    void *acc = colsum + BLOCK;
    int64_t K = channels * inner, per_block = BLOCK / inner;
    for (int64_t c = c0; c < c1; c += per_block) {
        int64_t m = c1 - c < per_block ? c1 - c : per_block;
        *ss += is_double ? cols_f64((const double *)x, outer, K, c * inner, m * inner, inner,
                                    chsum + (c - c0), acc, colsum)
                         : cols_f32((const float *)x, outer, K, c * inner, m * inner, inner,
                                    chsum + (c - c0), acc, colsum);
    }
    return 0;
}

static PyObject *channel_sums(PyObject *self, PyObject *args) {
    PyObject *obj;
    Py_buffer view;
    int is_double, threads, failed = 0;
    long long outer, channels, inner;
    (void)self;
    if (!PyArg_ParseTuple(args, "OLLLi", &obj, &outer, &channels, &inner, &threads))
        return NULL;
    if (get_float_buffer(obj, "x", 0, outer, channels, inner, &view, &is_double) < 0)
        return NULL;
    const void *x = view.buf;
    int64_t C = channels;
    split_t split = plan_split(outer, C, inner, threads);
    /* channel sums per part, then each thread's sum of squares (added in thread order
     * afterwards, so that the result does not depend on which thread finishes first) */
    size_t nsums = (size_t)(C * split.parts), nall = nsums + (size_t)split.threads;
    double *sums = shared_scratch(nall);
    if (sums == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    memset(sums, 0, nall * sizeof(double));
    double ss = 0.0, *partial = sums + nsums;
    Py_BEGIN_ALLOW_THREADS
    if (split.threads == 1) {
        failed = unit(x, is_double, 0, outer, C, inner, 0, C, sums, &ss);
    } else {
#ifdef _OPENMP
#pragma omp parallel num_threads(split.threads) reduction(+ : failed)
        {
            int64_t o0, o1, c0, c1, part;
            int t = omp_get_thread_num();
            double q = 0.0;
            split_share(split, t, omp_get_num_threads(), outer, C, &o0, &o1, &c0, &c1, &part);
            failed += unit(x, is_double, o0, o1, C, inner, c0, c1, sums + C * part + c0, &q);
            partial[t] = q;
        }
#endif
        for (int t = 0; t < split.threads; t++) ss += partial[t];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (failed) return PyErr_NoMemory();
    return Py_BuildValue("(dd)", squared_totals(sums, C, C, split.parts), ss);
}

static PyMethodDef methods[] = {
    {"channel_sums", channel_sums, METH_VARARGS,
     "channel_sums(x, outer, channels, inner, threads) -> (sum_c S_c^2, sum x^2); x: a "
     "C-contiguous float32/float64 buffer of outer * channels * inner elements"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cmoments", "One-pass per-channel sums (optional accelerator).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cmoments(void) { return PyModule_Create(&module); }
