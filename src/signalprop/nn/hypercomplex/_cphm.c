/* The PH weight composition and its backward in one pass each (optional accelerator of
 * signalprop.nn.hypercomplex; used by compose_weight through _fused.py).
 *
 * With A (n, n, n) and F (n, R, L) (R = out / n, L = in / n * taps), the composed weight
 * W = sum_s kron(A_s, F_s) is, as an (n, R, n, L) array,
 *
 *     W[p, r, q, :] = sum_s A[s, p, q] F[s, r, :]                             (forward)
 *
 * and for its gradient G (same layout)
 *
 *     dF[s, r, :] = sum_{p, q} A[s, p, q] G[p, r, q, :]
 *     dA[s, p, q] = sum_{r} < G[p, r, q, :], F[s, r, :] >                     (backward)
 *
 * Torch takes a matrix product into (p, q, r, :) order and an interleaving copy forward,
 * and a re-layout of G plus two matrix products backward: each touches the 1 MB weight of
 * a 512 x 512 layer two or three times. Here the forward writes W once (F stays in cache)
 * and the backward reads G once for both gradients.
 *
 * Precision: each W entry and each dF entry is a sum of n (n^2) products in the element
 * type, as torch's products take them; each dA entry sums R * L products: lane-wise in the
 * element type over FOLD_ROWS filter rows (8 L / lanes terms per lane), then in double
 * (torch sums all in the element type). The results agree with torch's to rounding, not
 * bit for bit. Stack and scratch grow with n (n^2 offsets, n^3 vectors per thread): the
 * caller limits n (_fused.MAX_N).
 *
 * Entry points take addresses: the one caller (_fused.py) checks dtype, device, shapes
 * and contiguity right before it calls. Variants: generic, AVX2 + FMA, AVX-512, chosen
 * by the CPU (set_variant() forces one, for tests).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../../_cvariant.h"

#define SERIAL_BELOW 65536 /* weight elements; smaller compositions run on one thread */
#define FOLD_ROWS 8        /* filter rows of dA partial sums kept in the element type */

typedef float vf __attribute__((vector_size(64)));
typedef double vd __attribute__((vector_size(64)));

/* dF and the dA partial sums for U vectors of one filter row (from l0, advanced): dF in
 * registers over the n^2 (p, q) terms, dA lane-wise into vacc (U independent chains). */
#define GRAD_GROUP(U, T, V, W)                                                             \
    for (; l0 + (U) * (W) <= body_end; l0 += (U) * (W)) {                                  \
        V fv[U], dv[U];                                                                    \
        for (int k = 0; k < (U); k++) {                                                    \
            memcpy(&fv[k], f + l0 + k * (W), sizeof(V));                                   \
            dv[k] = zero;                                                                  \
        }                                                                                  \
        for (int64_t pq = 0; pq < nn; pq++) {                                              \
            const T *g = G + goff[pq] + l0;                                                \
            T a = As[pq];                                                                  \
            V gv, sum = zero;                                                              \
            for (int k = 0; k < (U); k++) {                                                \
                memcpy(&gv, g + k * (W), sizeof(V));                                       \
                sum += gv * fv[k];                                                         \
                dv[k] += a * gv;                                                           \
            }                                                                              \
            va[pq] += sum;                                                                 \
        }                                                                                  \
        for (int k = 0; k < (U); k++) memcpy(d + l0 + k * (W), &dv[k], sizeof(V));         \
    }

/* One kernel set for element type T (vector type V of W lanes), target attribute ATTR.
 *
 * compose: block rows pr = p * R + r in [b0, b1).
 * grad: filter rows r in [r0, r1); dA partial sums (double, n^3) added into ga_acc. */
#define DEFINE_KERNELS(SFX, ATTR, T, V, W)                                                 \
    ATTR static void compose_##SFX(const T *A, const T *F, T *Wt, int64_t n, int64_t R,    \
                                   int64_t L, int64_t b0, int64_t b1) {                    \
        for (int64_t pr = b0; pr < b1; pr++) {                                             \
            int64_t p = pr / R, r = pr % R;                                                \
            for (int64_t q = 0; q < n; q++) {                                              \
                T *out = Wt + (pr * n + q) * L;                                            \
                int64_t s0 = 0;                                                            \
                for (; s0 + 4 <= n; s0 += 4) {                                             \
                    T c0 = A[(s0 * n + p) * n + q], c1 = A[((s0 + 1) * n + p) * n + q];    \
                    T c2 = A[((s0 + 2) * n + p) * n + q], c3 = A[((s0 + 3) * n + p) * n + q];\
                    const T *f0 = F + (s0 * R + r) * L, *f1 = f0 + R * L;                  \
                    const T *f2 = f1 + R * L, *f3 = f2 + R * L;                            \
                    if (s0 == 0)                                                           \
                        for (int64_t l = 0; l < L; l++)                                    \
                            out[l] = c0 * f0[l] + c1 * f1[l] + c2 * f2[l] + c3 * f3[l];    \
                    else                                                                   \
                        for (int64_t l = 0; l < L; l++)                                    \
                            out[l] += c0 * f0[l] + c1 * f1[l] + c2 * f2[l] + c3 * f3[l];   \
                }                                                                          \
                for (; s0 < n; s0++) { /* n not a multiple of 4: one term at a time */     \
                    T c0 = A[(s0 * n + p) * n + q];                                        \
                    const T *f0 = F + (s0 * R + r) * L;                                    \
                    if (s0 == 0)                                                           \
                        for (int64_t l = 0; l < L; l++) out[l] = c0 * f0[l];               \
                    else                                                                   \
                        for (int64_t l = 0; l < L; l++) out[l] += c0 * f0[l];              \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    ATTR static void grad_##SFX(const T *A, const T *F, const T *G, T *gf, double *ga_acc, \
                                V *vacc, int64_t n, int64_t R, int64_t L, int64_t r0,      \
                                int64_t r1) {                                              \
        int64_t nn = n * n, body_end = L - L % W, goff[nn];                                \
        V zero = {0};                                                                      \
        for (int64_t i = 0; i < n * nn; i++) vacc[i] = zero;                               \
        for (int64_t r = r0; r < r1; r++) {                                                \
            for (int64_t pq = 0; pq < nn; pq++)                                            \
                goff[pq] = (((pq / n) * R + r) * n + pq % n) * L;                          \
            for (int64_t s = 0; s < n; s++) {                                              \
                const T *f = F + (s * R + r) * L, *As = A + s * nn;                        \
                T *d = gf + (s * R + r) * L;                                               \
                V *va = vacc + s * nn;                                                     \
                double *sa = ga_acc + s * nn;                                              \
                int64_t l0 = 0;                                                            \
                GRAD_GROUP(4, T, V, W)                                                     \
                GRAD_GROUP(1, T, V, W)                                                     \
                for (int64_t l = body_end; l < L; l++) {                                   \
                    T fs = f[l], ds = 0;                                                   \
                    for (int64_t pq = 0; pq < nn; pq++) {                                  \
                        T gs = G[goff[pq] + l];                                            \
                        ds += As[pq] * gs;                                                 \
                        sa[pq] += (double)(gs * fs);                                       \
                    }                                                                      \
                    d[l] = ds;                                                             \
                }                                                                          \
            }                                                                              \
            if ((r - r0) % FOLD_ROWS == FOLD_ROWS - 1 || r == r1 - 1)                      \
                for (int64_t i = 0; i < n * nn; i++) {                                     \
                    double t = 0.0;                                                        \
                    for (int k = 0; k < W; k++) t += (double)vacc[i][k];                   \
                    ga_acc[i] += t;                                                        \
                    vacc[i] = zero;                                                        \
                }                                                                          \
        }                                                                                  \
    }

#ifdef HAVE_FMA_TARGET
DEFINE_KERNELS(f_avx2, FMA_ATTR, float, vf, 16)
DEFINE_KERNELS(d_avx2, FMA_ATTR, double, vd, 8)
DEFINE_KERNELS(f_512, AVX512_ATTR, float, vf, 16)
DEFINE_KERNELS(d_512, AVX512_ATTR, double, vd, 8)
#endif
DEFINE_KERNELS(f, , float, vf, 16)
DEFINE_KERNELS(d, , double, vd, 8)

static int team(int64_t elements, int64_t units, int threads) {
#ifdef _OPENMP
    if (elements < SERIAL_BELOW || threads < 1) return 1;
    return units < threads ? (int)units : threads;
#else
    (void)elements, (void)units, (void)threads;
    return 1;
#endif
}

/* This team member's share [*b0, *b1) of `total` units; returns its index. */
static int my_share(int64_t total, int64_t *b0, int64_t *b1) {
#ifdef _OPENMP
    int t = omp_get_thread_num(), k = omp_get_num_threads();
#else
    int t = 0, k = 1;
#endif
    *b0 = total * t / k;
    *b1 = total * (t + 1) / k;
    return t;
}

static void compose_range(const void *A, const void *F, void *Wt, int is_double, int64_t n,
                          int64_t R, int64_t L, int64_t b0, int64_t b1) {
    int v = current_variant();
    (void)v;
#ifdef HAVE_FMA_TARGET
    if (v == 2) {
        if (is_double) compose_d_512(A, F, Wt, n, R, L, b0, b1);
        else compose_f_512(A, F, Wt, n, R, L, b0, b1);
        return;
    }
    if (v == 1) {
        if (is_double) compose_d_avx2(A, F, Wt, n, R, L, b0, b1);
        else compose_f_avx2(A, F, Wt, n, R, L, b0, b1);
        return;
    }
#endif
    if (is_double) compose_d(A, F, Wt, n, R, L, b0, b1);
    else compose_f(A, F, Wt, n, R, L, b0, b1);
}

static void grad_range(const void *A, const void *F, const void *G, void *gf, double *ga,
                       void *vacc, int is_double, int64_t n, int64_t R, int64_t L,
                       int64_t r0, int64_t r1) {
    int v = current_variant();
    (void)v;
#ifdef HAVE_FMA_TARGET
    if (v == 2) {
        if (is_double) grad_d_512(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
        else grad_f_512(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
        return;
    }
    if (v == 1) {
        if (is_double) grad_d_avx2(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
        else grad_f_avx2(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
        return;
    }
#endif
    if (is_double) grad_d(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
    else grad_f(A, F, G, gf, ga, vacc, n, R, L, r0, r1);
}

static int parse_sizes(long long n, long long R, long long L) {
    if (n <= 0 || R <= 0 || L <= 0) {
        PyErr_SetString(PyExc_ValueError, "n, R and L must be positive");
        return -1;
    }
    return 0;
}

static PyObject *compose_at(PyObject *self, PyObject *args) {
    unsigned long long a, f, w;
    int is_double, threads;
    long long n, R, L;
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKpLLLi", &a, &f, &w, &is_double, &n, &R, &L, &threads))
        return NULL;
    if (parse_sizes(n, R, L) < 0) return NULL;
    if (a == 0 || f == 0 || w == 0) {
        PyErr_SetString(PyExc_ValueError, "addresses must be non-zero");
        return NULL;
    }
    const void *A = (const void *)(uintptr_t)a, *F = (const void *)(uintptr_t)f;
    void *Wt = (void *)(uintptr_t)w;
    int64_t rows = n * R;
    int nt = team(rows * n * L, rows, threads);
    Py_BEGIN_ALLOW_THREADS
    if (nt == 1) {
        compose_range(A, F, Wt, is_double, n, R, L, 0, rows);
    } else {
#pragma omp parallel num_threads(nt)
        {
            int64_t b0, b1;
            int t = my_share(rows, &b0, &b1);
            (void)t;
            compose_range(A, F, Wt, is_double, n, R, L, b0, b1);
        }
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *compose_grad_at(PyObject *self, PyObject *args) {
    unsigned long long a, f, g, ga, gf;
    int is_double, threads;
    long long n, R, L;
    (void)self;
    if (!PyArg_ParseTuple(args, "KKKKKpLLLi", &a, &f, &g, &ga, &gf, &is_double, &n, &R, &L,
                          &threads))
        return NULL;
    if (parse_sizes(n, R, L) < 0) return NULL;
    if (a == 0 || f == 0 || g == 0 || ga == 0 || gf == 0) {
        PyErr_SetString(PyExc_ValueError, "addresses must be non-zero");
        return NULL;
    }
    const void *A = (const void *)(uintptr_t)a, *F = (const void *)(uintptr_t)f;
    const void *G = (const void *)(uintptr_t)g;
    void *GF = (void *)(uintptr_t)gf;
    int64_t cube = n * n * n;
    int nt = team(n * R * n * L, R, threads);
    /* per thread: n^3 double sums, then n^3 vectors (64-byte aligned) of lane sums */
    size_t per = ((size_t)cube * (sizeof(double) + 64) + 63) / 64 * 64;
    char *buf = aligned_alloc(64, per * (size_t)nt);
    if (buf == NULL) return PyErr_NoMemory();
    memset(buf, 0, per * (size_t)nt);
    Py_BEGIN_ALLOW_THREADS
    if (nt == 1) {
        grad_range(A, F, G, GF, (double *)(buf + (size_t)cube * 64), buf, is_double, n, R,
                   L, 0, R);
    } else {
#pragma omp parallel num_threads(nt)
        {
            int64_t r0, r1;
            char *mine = buf + per * (size_t)my_share(R, &r0, &r1);
            grad_range(A, F, G, GF, (double *)(mine + (size_t)cube * 64), mine, is_double, n,
                       R, L, r0, r1);
        }
    }
    Py_END_ALLOW_THREADS
    for (int64_t i = 0; i < cube; i++) {
        double t = 0.0;
        for (int k = 0; k < nt; k++) t += ((double *)(buf + per * (size_t)k + cube * 64))[i];
        if (is_double) ((double *)(uintptr_t)ga)[i] = t;
        else ((float *)(uintptr_t)ga)[i] = (float)t;
    }
    free(buf);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"compose_at", compose_at, METH_VARARGS,
     "compose_at(a, f, w, is_double, n, R, L, threads): W[p, r, q, :] = sum_s A[s, p, q]"
     " F[s, r, :] on memory given by address; the caller has checked it"},
    {"compose_grad_at", compose_grad_at, METH_VARARGS,
     "compose_grad_at(a, f, g, ga, gf, is_double, n, R, L, threads): dA into ga and dF into"
     " gf (address 0: not wanted) from the weight gradient g; the caller has checked it"},
    {"set_variant", set_variant, METH_VARARGS,
     "set_variant(v) -> the variant now running (tests: 0 generic, 1 AVX2, 2 AVX-512, -1"
     " the best)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cphm", "PH weight composition and its backward (optional).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cphm(void) { return PyModule_Create(&module); }
