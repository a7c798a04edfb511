/* The binary weight quantizer Q(w) = alpha sign(w) in two passes each way (optional C
 * accelerator of signalprop.nn.quantized._quantizer; torch ops are used without it).
 *
 * binary_forward(w, q, alpha, outer, order, threads): w is read as `outer` rows of equal
 * length n (one row: one scale for the tensor; output channels: one scale per channel).
 * Per row alpha = sum|w| / n (order 1, "mean_abs") or sqrt(sum w^2 / n) (order 2, "rms"),
 * written to alpha[row]; then q = copysign(alpha, w). Torch needs five passes over the
 * weights for this (sign, norm, product); here the second pass reads w from cache.
 *
 * binary_backward(g, w, alpha, out, outer, order, limit, threads): the gradient of the
 * quantizer with the straight-through estimator (limit = inf) or the clipped one (1 on
 * |w| <= limit): per row d = <g, sign(w)>, then
 *     out = (g alpha) [|w| <= limit] + sign(w) d / n            (order 1)
 *     out = (g alpha) [|w| <= limit] + w d / (n alpha)          (order 2; 0 if alpha = 0)
 * with the roundings of the torch ops it replaces (built with -ffp-contract=off: no fused
 * multiply-add).
 *
 * Buffers are NumPy views of contiguous CPU tensors, checked here: one element type
 * (float32 or float64), C-contiguous, the expected length, writable where written.
 * Sums are taken over fixed blocks of BLOCK elements (float runs of at most RUN steps per
 * lane folded into doubles), so they do not depend on the number of threads and their
 * relative error stays near 1e-7; blocks are added in order. Work is split over at most
 * `threads` OpenMP threads (the caller passes torch.get_num_threads()).
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

#define BLOCK 8192          /* elements per partial sum */
#define LANES 16            /* independent accumulators (vectorized by the compiler) */
#define RUN 64              /* steps per lane summed in the input precision */
#define SERIAL_BELOW 65536  /* elements; smaller tensors are not worth waking threads */

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SP_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SP_CLONES
#endif

/* Sum of TERM(a[i], b[i]) (sign(b) a, |a| or a^2) over n <= BLOCK elements. The
 * counted loops vectorize whether or not signed overflow wraps (Python builds extensions
 * with -fwrapv, under which `i + LANES <= end` loops did not, at a third of the speed). */
#define DEFINE_SUM(NAME, T, TERM)                                                          \
    SP_CLONES static double NAME(const void *pa, const void *pb, int64_t n) {              \
        const T *a = pa, *b = pb;                                                          \
        (void)b;                                                                           \
        double total = 0.0;                                                                \
        int64_t runs = n / ((int64_t)RUN * LANES), i = 0;                                  \
        for (int64_t k = 0; k <= runs; k++) {                                              \
            int64_t steps = k < runs ? RUN : (n - i) / LANES;                              \
            T acc[LANES] = {0};                                                            \
            for (int64_t s = 0; s < steps; s++, i += LANES)                                \
                for (int l = 0; l < LANES; l++) acc[l] += TERM(a[i + l], b[i + l]);        \
            for (int l = 0; l < LANES; l++) total += (double)acc[l];                       \
        }                                                                                  \
        for (; i < n; i++) total += (double)TERM(a[i], b[i]);                              \
        return total;                                                                      \
    }

#define ABS_TERM_F(x, unused) fabsf(x) /* b is not read (NULL) */
#define ABS_TERM_D(x, unused) fabs(x)
#define SQUARE_TERM(x, unused) (x * x)
#define SIGNED_TERM_F(g, w) copysignf(1.0f, w) * g
#define SIGNED_TERM_D(g, w) copysign(1.0, w) * g
#define PRODUCT_TERM(g, w) (g * w)

DEFINE_SUM(abs_sum_f, float, ABS_TERM_F)
DEFINE_SUM(abs_sum_d, double, ABS_TERM_D)
DEFINE_SUM(square_sum_f, float, SQUARE_TERM)
DEFINE_SUM(square_sum_d, double, SQUARE_TERM)
DEFINE_SUM(signed_dot_f, float, SIGNED_TERM_F)
DEFINE_SUM(signed_dot_d, double, SIGNED_TERM_D)

/* The element-wise passes over one block, for rows of scale a (and coefficient c):
 * q = copysign(a, w), and the gradient g a [|w| <= limit] + TERM(w, c), the mask left
 * out for the straight-through estimator (limit = inf). */
#define DEFINE_GRAD(NAME, T, TERM, ABS)                                                    \
    SP_CLONES static void NAME(const T *g, const T *w, T *out, T a, T c, T limit,          \
                               int64_t n) {                                                \
        if (isinf(limit)) {                                                                \
            for (int64_t i = 0; i < n; i++) out[i] = g[i] * a + TERM(w[i], c);             \
            return;                                                                        \
        }                                                                                  \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T mask = ABS(w[i]) <= limit ? (T)1 : (T)0;                                     \
            out[i] = g[i] * a * mask + TERM(w[i], c);                                      \
        }                                                                                  \
    }
#define DEFINE_PASSES(SFX, T, COPYSIGN, ABS)                                                 \
    SP_CLONES static void fill_##SFX(const T *w, T *q, T a, int64_t n) {                   \
        for (int64_t i = 0; i < n; i++) q[i] = COPYSIGN(a, w[i]);                          \
    }                                                                                      \
    DEFINE_GRAD(grad_sign_##SFX, T, SIGN_TIMES_##SFX, ABS)                                   \
    DEFINE_GRAD(grad_rms_##SFX, T, PRODUCT_TERM, ABS)

#define SIGN_TIMES_f(w, c) copysignf(1.0f, w) * c
#define SIGN_TIMES_d(w, c) copysign(1.0, w) * c
DEFINE_PASSES(f, float, copysignf, fabsf)
DEFINE_PASSES(d, double, copysign, fabs)

typedef struct {
    Py_buffer view;
    int is_double;
    int held;
} buffer_t;

/* obj as a C-contiguous float32/float64 buffer of exactly n elements (any number for
 * n < 0); -1 with a
 * ValueError naming it otherwise (nothing held). */
static int get_buffer(PyObject *obj, const char *name, int writable, int64_t n,
                      buffer_t *b) {
    b->held = 0;
    if (PyObject_GetBuffer(obj, &b->view, PyBUF_RECORDS_RO) < 0) return -1;
    const char *f = b->view.format ? b->view.format : "B";
    if (*f == '@' || *f == '=' || *f == '<') f++;
    b->is_double = strcmp(f, "d") == 0 && b->view.itemsize == 8;
    const char *bad = NULL;
    if (!b->is_double && !(strcmp(f, "f") == 0 && b->view.itemsize == 4))
        bad = "must hold float32 or float64 values";
    else if (!PyBuffer_IsContiguous(&b->view, 'C'))
        bad = "must be C-contiguous";
    else if (writable && b->view.readonly)
        bad = "must be writable";
    else if (n >= 0 && b->view.len / b->view.itemsize != n)
        bad = "has the wrong number of elements";
    if (bad == NULL) {
        b->held = 1;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s %s", name, bad);
    PyBuffer_Release(&b->view);
    return -1;
}

static void release(buffer_t *bufs, int count) {
    for (int i = 0; i < count; i++)
        if (bufs[i].held) PyBuffer_Release(&bufs[i].view);
}

/* Per row r of `outer` rows of n: sums[r] = the sum of TERM over the row, taken block by
 * block (partials in blocks order), in parallel over blocks. */
typedef double (*sum_fn)(const void *, const void *, int64_t);

static int row_sums(sum_fn fn, const char *a, const char *b, size_t item, int64_t outer,
                    int64_t n, int threads, double *sums) {
    int64_t per_row = (n + BLOCK - 1) / BLOCK, blocks = outer * per_row;
    double *part = malloc((size_t)blocks * sizeof(double));
    if (part == NULL) return -1;
#ifdef _OPENMP
    int nt = outer * n < SERIAL_BELOW ? 1 : threads;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
#endif
    for (int64_t k = 0; k < blocks; k++) {
        int64_t r = k / per_row, start = (k % per_row) * BLOCK;
        int64_t len = n - start < BLOCK ? n - start : BLOCK, off = r * n + start;
        part[k] = fn(a + off * item, b ? b + off * item : NULL, len);
    }
    for (int64_t r = 0; r < outer; r++) {
        double t = 0.0;
        for (int64_t k = 0; k < per_row; k++) t += part[r * per_row + k];
        sums[r] = t;
    }
    free(part);
    return 0;
}

/* Run pass(k) for the blocks of `outer` rows of n elements, in parallel over blocks. */
#define FOR_BLOCKS(outer, n, threads, BODY)                                                \
    do {                                                                                   \
        int64_t per_row_ = ((n) + BLOCK - 1) / BLOCK, blocks_ = (outer) * per_row_;       \
        int nt_ = (outer) * (n) < SERIAL_BELOW ? 1 : (threads);                            \
        (void)nt_;                                                                         \
        _Pragma("omp parallel for schedule(static) num_threads(nt_) if (nt_ > 1)")         \
        for (int64_t k = 0; k < blocks_; k++) {                                            \
            int64_t r = k / per_row_, start = (k % per_row_) * BLOCK;                      \
            int64_t len = (n) - start < BLOCK ? (n) - start : BLOCK, off = r * (n) + start;\
            BODY;                                                                          \
        }                                                                                  \
    } while (0)

/* Checks shared by both entry points: outer rows dividing the length of w. */
static int row_length(buffer_t *w, int64_t outer, int64_t *n) {
    int64_t total = (int64_t)(w->view.len / w->view.itemsize);
    if (outer < 1 || total < 1 || total % outer != 0) {
        PyErr_Format(PyExc_ValueError, "outer must divide the %lld weights, got %lld",
                     (long long)total, (long long)outer);
        return -1;
    }
    *n = total / outer;
    return 0;
}

static int same_type(buffer_t *bufs, int count) {
    for (int i = 1; i < count; i++)
        if (bufs[i].is_double != bufs[0].is_double) {
            PyErr_SetString(PyExc_ValueError, "all buffers must have one element type");
            return -1;
        }
    return 0;
}

static PyObject *binary_forward(PyObject *self, PyObject *args) {
    PyObject *ow, *oq, *oa;
    long long outer;
    int order, threads;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOLii", &ow, &oq, &oa, &outer, &order, &threads))
        return NULL;
    buffer_t b[3];
    memset(b, 0, sizeof b);
    int64_t n = 0;
    if (get_buffer(ow, "w", 0, -1, &b[0]) < 0) return NULL;
    if (row_length(&b[0], outer, &n) < 0 ||
        get_buffer(oq, "q", 1, outer * n, &b[1]) < 0 ||
        get_buffer(oa, "alpha", 1, outer, &b[2]) < 0 || same_type(b, 3) < 0) {
        release(b, 3);
        return NULL;
    }
    double *sums = malloc((size_t)outer * sizeof(double));
    int dbl = b[0].is_double, failed = sums == NULL;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) {
        sum_fn fn = dbl ? (order == 1 ? abs_sum_d : square_sum_d)
                        : (order == 1 ? abs_sum_f : square_sum_f);
        failed = row_sums(fn, b[0].view.buf, NULL, dbl ? 8 : 4, outer, n, threads, sums);
    }
    if (!failed && dbl) {
        const double *w = b[0].view.buf;
        double *q = b[1].view.buf, *alpha = b[2].view.buf;
        for (int64_t r = 0; r < outer; r++)
            alpha[r] = order == 1 ? sums[r] / n : sqrt(sums[r] / n);
        FOR_BLOCKS(outer, n, threads, fill_d(w + off, q + off, alpha[r], len));
    } else if (!failed) {
        const float *w = b[0].view.buf;
        float *q = b[1].view.buf, *alpha = b[2].view.buf;
        for (int64_t r = 0; r < outer; r++)
            alpha[r] = (float)(order == 1 ? sums[r] / n : sqrt(sums[r] / n));
        FOR_BLOCKS(outer, n, threads, fill_f(w + off, q + off, alpha[r], len));
    }
    Py_END_ALLOW_THREADS
    free(sums);
    release(b, 3);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

/* The coefficient of the alpha term: d / n (order 1) or d / (n alpha), 0 at alpha = 0. */
static double alpha_coef(double d, double alpha, int64_t n, int order) {
    if (order == 1) return d / (double)n;
    return alpha > 0 ? d / (alpha * (double)n) : 0.0;
}

static PyObject *binary_backward(PyObject *self, PyObject *args) {
    PyObject *og, *ow, *oa, *oo;
    long long outer;
    int order, threads;
    double limit;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOLidi", &og, &ow, &oa, &oo, &outer, &order, &limit,
                          &threads))
        return NULL;
    buffer_t b[4];
    memset(b, 0, sizeof b);
    int64_t n = 0;
    if (get_buffer(ow, "w", 0, -1, &b[1]) < 0) return NULL;
    if (row_length(&b[1], outer, &n) < 0 || get_buffer(og, "g", 0, outer * n, &b[0]) < 0 ||
        get_buffer(oa, "alpha", 0, outer, &b[2]) < 0 ||
        get_buffer(oo, "out", 1, outer * n, &b[3]) < 0 || same_type(b, 4) < 0) {
        release(b, 4);
        return NULL;
    }
    double *sums = malloc((size_t)outer * sizeof(double));
    int dbl = b[0].is_double, failed = sums == NULL;
    Py_BEGIN_ALLOW_THREADS
    if (!failed) {
        failed = row_sums(dbl ? signed_dot_d : signed_dot_f, b[0].view.buf, b[1].view.buf, dbl ? 8 : 4, outer, n, threads,
                          sums);
    }
    if (!failed && dbl) {
        const double *g = b[0].view.buf, *w = b[1].view.buf, *alpha = b[2].view.buf;
        double *out = b[3].view.buf;
        for (int64_t r = 0; r < outer; r++) sums[r] = alpha_coef(sums[r], alpha[r], n, order);
        if (order == 1)
            FOR_BLOCKS(outer, n, threads, grad_sign_d(g + off, w + off, out + off, alpha[r],
                                                      sums[r], limit, len));
        else
            FOR_BLOCKS(outer, n, threads, grad_rms_d(g + off, w + off, out + off, alpha[r],
                                                     sums[r], limit, len));
    } else if (!failed) {
        const float *g = b[0].view.buf, *w = b[1].view.buf, *alpha = b[2].view.buf;
        float *out = b[3].view.buf, fl = (float)limit;
        for (int64_t r = 0; r < outer; r++) sums[r] = alpha_coef(sums[r], alpha[r], n, order);
        if (order == 1)
            FOR_BLOCKS(outer, n, threads, grad_sign_f(g + off, w + off, out + off, alpha[r],
                                                      (float)sums[r], fl, len));
        else
            FOR_BLOCKS(outer, n, threads, grad_rms_f(g + off, w + off, out + off, alpha[r],
                                                     (float)sums[r], fl, len));
    }
    Py_END_ALLOW_THREADS
    free(sums);
    release(b, 4);
    if (failed) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"binary_forward", binary_forward, METH_VARARGS,
     "binary_forward(w, q, alpha, outer, order, threads): alpha per row, q = copysign(alpha, "
     "w)"},
    {"binary_backward", binary_backward, METH_VARARGS,
     "binary_backward(g, w, alpha, out, outer, order, limit, threads): the quantizer's "
     "gradient"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cquant",
                                    "Fused binary weight quantizer (see _cquant.c).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__cquant(void) { return PyModule_Create(&module); }
