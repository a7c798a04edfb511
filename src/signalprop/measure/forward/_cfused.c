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
 *
 * Threads split as plan_split() in _csupport.h describes (by whole images, as
 * torch.add does, where there are enough). Long rows are processed in memory order with sums in registers; short rows (small maps)
 * row by row into column sums kept in L1 (walking column strips down the rows instead
 * was slower: rows 2^k bytes apart fall into the same cache sets). Precision as in
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

/* Kernels for element type T (vector V of W lanes), compiled once per ATTR (a target
 * with FMA, and a generic one). */
#define DEFINE_KERNELS(SUFFIX, ATTR, T, V, W, HSUM, FMAV, FMAS)                            \
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
    /* Short rows: columns [k0, k0 + n) (whole channels), row by row, summed in acc     \
     * (2n values of T, in L1; folded into col, 2n doubles, every ROWS_PER_FLUSH rows),   \
     * then per channel. */                                                                \
    ATTR static void cols_##SUFFIX(const T *x, const T *b, T *y, T al, int64_t outer,      \
                                   int64_t K, int64_t k0, int64_t n, int64_t inner,        \
                                   double *cb, double *cy, T *acc, double *col,            \
                                   double *out) {                                          \
        double qb = 0.0, qy = 0.0;                                                         \
        T *accb = acc, *accy = acc + n;                                                    \
        memset(col, 0, 2 * (size_t)n * sizeof(double));                                   \
        for (int64_t o0 = 0; o0 < outer; o0 += ROWS_PER_FLUSH) {                           \
            int64_t o1 = o0 + ROWS_PER_FLUSH < outer ? o0 + ROWS_PER_FLUSH : outer;       \
            memset(acc, 0, 2 * (size_t)n * sizeof(T));                                     \
            int64_t o = o0;                                                                \
            for (; o + 2 <= o1; o += 2) { /* two rows per pass: half the acc traffic */    \
                int64_t off = o * K + k0;                                                  \
                const T *xr = x + off, *br = b + off, *xs = xr + K, *bs = br + K;          \
                T *yr = y + off, *ys = yr + K;                                             \
                V pb = {0}, py = {0};                                                      \
                int64_t j = 0;                                                             \
                for (; j + W <= n; j += W) {                                               \
                    V bv = load_##SUFFIX(br + j), bw = load_##SUFFIX(bs + j);              \
                    V yv = FMAV(bv, al, load_##SUFFIX(xr + j));                            \
                    V yw = FMAV(bw, al, load_##SUFFIX(xs + j));                            \
                    memcpy(yr + j, &yv, sizeof yv);                                        \
                    memcpy(ys + j, &yw, sizeof yw);                                        \
                    V sb = load_##SUFFIX(accb + j) + (bv + bw);                            \
                    V sy = load_##SUFFIX(accy + j) + (yv + yw);                            \
                    memcpy(accb + j, &sb, sizeof sb);                                      \
                    memcpy(accy + j, &sy, sizeof sy);                                      \
                    pb += bv * bv + bw * bw;                                               \
                    py += yv * yv + yw * yw;                                               \
                }                                                                          \
                qb += HSUM(pb);                                                            \
                qy += HSUM(py);                                                            \
                for (; j < n; j++) {                                                       \
                    T bv = br[j], yv = FMAS(bv, al, xr[j]);                                \
                    T bw = bs[j], yw = FMAS(bw, al, xs[j]);                                \
                    yr[j] = yv;                                                            \
                    ys[j] = yw;                                                            \
                    accb[j] += bv + bw;                                                    \
                    accy[j] += yv + yw;                                                    \
                    qb += (double)bv * (double)bv + (double)bw * (double)bw;               \
                    qy += (double)yv * (double)yv + (double)yw * (double)yw;               \
                }                                                                          \
            }                                                                              \
            for (; o < o1; o++) {                                                          \
                int64_t off = o * K + k0;                                                  \
                const T *xr = x + off, *br = b + off;                                      \
                T *yr = y + off;                                                           \
                V pb = {0}, py = {0};                                                      \
                int64_t j = 0;                                                             \
                for (; j + W <= n; j += W) {                                               \
                    V bv = load_##SUFFIX(br + j);                                          \
                    V yv = FMAV(bv, al, load_##SUFFIX(xr + j));                            \
                    memcpy(yr + j, &yv, sizeof yv);                                        \
                    V sb = load_##SUFFIX(accb + j) + bv, sy = load_##SUFFIX(accy + j) + yv; \
                    memcpy(accb + j, &sb, sizeof sb);                                      \
                    memcpy(accy + j, &sy, sizeof sy);                                      \
                    pb += bv * bv;                                                         \
                    py += yv * yv;                                                         \
                }                                                                          \
                qb += HSUM(pb);                                                            \
                qy += HSUM(py);                                                            \
                for (; j < n; j++) {                                                       \
                    T bv = br[j], yv = FMAS(bv, al, xr[j]);                                \
                    yr[j] = yv;                                                            \
                    accb[j] += bv;                                                         \
                    accy[j] += yv;                                                         \
                    qb += (double)bv * (double)bv;                                         \
                    qy += (double)yv * (double)yv;                                         \
                }                                                                          \
            }                                                                              \
            for (int64_t j = 0; j < 2 * n; j++) col[j] += (double)acc[j];                  \
        }                                                                                  \
        for (int64_t c = 0; c < n / inner; c++) {                                          \
            double tb = 0.0, ty = 0.0;                                                     \
            for (int64_t i = 0; i < inner; i++) {                                          \
                tb += col[c * inner + i];                                                  \
                ty += col[n + c * inner + i];                                              \
            }                                                                              \
            cb[c] += tb;                                                                   \
            cy[c] += ty;                                                                   \
        }                                                                                  \
        out[0] += qb;                                                                      \
        out[1] += qy;                                                                      \
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
    double *col = scratch(4 * BLOCK), *acc = col + 2 * BLOCK; /* 2 BLOCK doubles, 2 BLOCK T */
    if (col == NULL) return -1;
    int64_t K = j->channels * inner, per_block = BLOCK / inner;
    for (int64_t c = c0; c < c1; c += per_block) {
        int64_t m = c1 - c < per_block ? c1 - c : per_block;
#define COLS(S, T)                                                                         \
    cols_##S((const T *)x, (const T *)b, (T *)y, (T)j->alpha, outer, K, c * inner,        \
             m * inner, inner, cb + (c - c0), cy + (c - c0), (T *)acc, col, q)
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

static PyObject *residual_add_sums(PyObject *self, PyObject *args) {
    PyObject *objs[3];
    Py_buffer views[3];
    double alpha;
    int is_double = 0, threads, failed = 0;
    long long outer, channels, inner;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOdLLLi", &objs[0], &objs[1], &objs[2], &alpha, &outer,
                          &channels, &inner, &threads))
        return NULL;
    if (get_buffers(objs, outer, channels, inner, views, &is_double) < 0) return NULL;
    job_t job = {views[0].buf, views[1].buf, views[2].buf, alpha, is_double,
                 use_fma_target(), outer, channels, inner};
    int64_t C = channels;
    split_t split = plan_split(outer, C, inner, threads);
    /* per part: channel sums of b, then of y; then per thread: its two sums of squares
     * (added in thread order afterwards, so the result does not depend on timing) */
    size_t nsums = (size_t)(2 * C * split.parts), nall = nsums + 2 * (size_t)split.threads;
    double *sums = shared_scratch(nall);
    if (sums == NULL) {
        for (int k = 0; k < 3; k++) PyBuffer_Release(&views[k]);
        return PyErr_NoMemory();
    }
    memset(sums, 0, nall * sizeof(double));
    double q0 = 0.0, q1 = 0.0, *partial = sums + nsums;
    Py_BEGIN_ALLOW_THREADS
    if (split.threads == 1) {
        double q[2] = {0.0, 0.0};
        failed = unit(&job, 0, outer, 0, C, sums, sums + C, q);
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
            failed += unit(&job, o0, o1, c0, c1, own, own + C, q);
            partial[2 * t] = q[0], partial[2 * t + 1] = q[1];
        }
#endif
        for (int t = 0; t < split.threads; t++) q0 += partial[2 * t], q1 += partial[2 * t + 1];
    }
    Py_END_ALLOW_THREADS
    for (int k = 0; k < 3; k++) PyBuffer_Release(&views[k]);
    if (failed) return PyErr_NoMemory();
    return Py_BuildValue("(dddd)", squared_totals(sums, C, 2 * C, split.parts), q0,
                         squared_totals(sums + C, C, 2 * C, split.parts), q1);
}

static PyMethodDef methods[] = {
    {"residual_add_sums", residual_add_sums, METH_VARARGS,
     "residual_add_sums(x, b, y, alpha, outer, channels, inner, threads)"
     " -> (sum_c B_c^2, sum b^2, sum_c Y_c^2, sum y^2); writes y = x + alpha * b; x, b, y:"
     " C-contiguous buffers of one element type (float32/float64), y writable, each of"
     " outer * channels * inner elements"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cfused", "Residual add with channel statistics (optional).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cfused(void) { return PyModule_Create(&module); }
