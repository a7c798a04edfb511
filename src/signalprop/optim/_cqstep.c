/* SGD's update and the rounding onto a quantization grid in one pass (optional C
 * accelerator of signalprop.optim.quantized; without it QuantizedTraining steps SGD and
 * then rounds with torch ops).
 *
 * sgd_round(p, g, buf, unit, rows, per_row, lr, momentum, dampening, weight_decay,
 *           nesterov, maximize, first, stochastic, top, key, threads)
 * updates the weight p (n elements, `rows` rows of equal length; `unit` holds one grid
 * unit per row when per_row, else one for all) exactly as torch.optim.SGD's single-tensor step does, with its roundings
 * (for a float32 weight the scalars are float32; `grad.add(param, alpha=wd)`,
 * `buf.add_(grad, alpha=1 - dampening)`, `grad.add(buf, alpha=momentum)` and
 * `param.add_(grad, alpha=-lr)` are one fused multiply-add each, as torch's CPU add with
 * alpha is; `buf.mul_(momentum)` a product), writes the momentum buffer back (on the first
 * step, `first`, it becomes a copy of the gradient; momentum 0 uses no buffer), and then
 * rounds p onto unit * codes:
 *   nearest (stochastic = 0): binary copysign(unit, p); else clamp(rint(p / u), -top, top)
 *       * unit, u = max(unit, the smallest normal number), as round_to_grid_ does with
 *       torch ops;
 *   stochastic: binary copysign(unit, p - unit r), r uniform in [-1, 1); else
 *       clamp(floor(p / u + r), -top, top) * unit, r uniform in [0, 1).
 * top = 0 means the binary grid; top = -1 skips the rounding (SGD's step alone, which
 * the caller's check compares with torch's before anything else). The random numbers
 * are counter-based: element k draws h = hash32(hash32(k ^ key_lo) ^ key_hi) (key_lo / key_hi: the 64-bit key's halves;
 * float32 uses the top 24 bits of h, float64 53 bits of h and hash32(h ^ 0x9E3779B9)),
 * so they do not depend on the number of threads; the caller makes `key` differ per
 * layer and step. Weights of more than 2^32 elements would repeat draws.
 *
 * The caller checks once that this reproduces torch's SGD step followed by the rounding
 * bit for bit (nearest rounding) and uses it only then (signalprop.optim._fused_step).
 * Buffers: NumPy views of contiguous CPU tensors, checked by get_float_buffer() in
 * measure/forward/_csupport.h (one element type, float32 or float64, C-contiguous,
 * exactly the expected length, p and buf writable); buf may be None with momentum 0.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../_cvariant.h"
#include "../measure/forward/_csupport.h"

#define CHUNK 16384 /* elements per unit of parallel work */

typedef struct {
    double lr, momentum, dampening, wd;
    int nesterov, maximize, first, stochastic, use_buf;
    double top;
    uint64_t key;
} opts_t;

/* A 32-bit integer hash (Wellons' lowbias32: xorshift-multiply, a bijection with low
 * bias); 32-bit products vectorize on any AVX2 machine, unlike 64-bit ones. */
static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x21F0AAADu;
    x ^= x >> 15;
    x *= 0xD35A2D97u;
    x ^= x >> 15;
    return x;
}

/* Elements [k0, k1) of one row (grid unit `unit`); element k draws from hash32 above.
 * Blocks of BL elements in two stages, each a loop the compiler vectorizes: SGD's update
 * into x (and the momentum buffer), then the rounding of x into p. The options are
 * loop-invariant locals, so every loop is specialized (unswitched) rather than branchy. */
#define BL 1024
#define DEFINE_SEGMENT(NAME, ATTR, T, TINY, FMA, RINT, COPYSIGN, UNIFORM)                \
    ATTR static void NAME(T *restrict p, const T *restrict g, T *restrict buf, T unit,    \
                          int64_t k0, int64_t k1, const opts_t *o) {                      \
        const T lr = (T)(-o->lr), m = (T)o->momentum, damp = (T)(1.0 - o->dampening);     \
        const T wd = (T)o->wd, top = (T)o->top, sign = o->maximize ? (T)-1 : (T)1;         \
        const T u = unit > TINY ? unit : TINY; /* unit.clamp_min(finfo.tiny) */          \
        const int has_wd = o->wd != 0.0, use_buf = o->use_buf, first = o->first;         \
        const int nesterov = o->nesterov, stochastic = o->stochastic;                     \
        const int binary = o->top == 0.0;                                                  \
        const uint64_t key = o->key;                                                       \
        T x[BL];                                                                           \
        for (int64_t b0 = k0; b0 < k1; b0 += BL) {                                         \
            const int64_t n = k1 - b0 < BL ? k1 - b0 : BL;                                 \
            T *restrict pp = p + b0, *restrict bb = use_buf ? buf + b0 : NULL;             \
            const T *restrict gg = g + b0;                                                 \
            /* stage 1: SGD (torch's single-tensor step, op by op) */                      \
            if (!use_buf) {                                                                \
                for (int64_t j = 0; j < n; j++) {                                          \
                    T d = gg[j] * sign;                                                    \
                    if (has_wd) d = FMA(pp[j], wd, d);                                     \
                    x[j] = FMA(d, lr, pp[j]);                                              \
                }                                                                          \
            } else if (first) {                                                            \
                for (int64_t j = 0; j < n; j++) {                                          \
                    T d = gg[j] * sign;                                                    \
                    if (has_wd) d = FMA(pp[j], wd, d);                                     \
                    bb[j] = d;                                                             \
                    x[j] = FMA(nesterov ? FMA(d, m, d) : d, lr, pp[j]);                    \
                }                                                                          \
            } else {                                                                       \
                for (int64_t j = 0; j < n; j++) {                                          \
                    T d = gg[j] * sign;                                                    \
                    if (has_wd) d = FMA(pp[j], wd, d);                                     \
                    T bv = FMA(d, damp, bb[j] * m);                                        \
                    bb[j] = bv;                                                            \
                    x[j] = FMA(nesterov ? FMA(bv, m, d) : bv, lr, pp[j]);                  \
                }                                                                          \
            }                                                                              \
            /* stage 2: the rounding (none for top < 0: SGD alone, for the check) */     \
            if (o->top < 0.0) {                                                            \
                memcpy(pp, x, (size_t)n * sizeof(T));                                      \
            } else if (!stochastic && binary) {                                            \
                for (int64_t j = 0; j < n; j++) pp[j] = COPYSIGN(unit, x[j]);              \
            } else if (!stochastic) {                                                      \
                for (int64_t j = 0; j < n; j++) {                                          \
                    T q = RINT(x[j] / u);                                                  \
                    pp[j] = (q < -top ? -top : (q > top ? top : q)) * unit;                \
                }                                                                          \
            } else {                                                                       \
                const uint32_t klo = (uint32_t)key, khi = (uint32_t)(key >> 32);          \
                T r[BL];                                                                   \
                for (int64_t j = 0; j < n; j++) {                                          \
                    uint32_t h = hash32(hash32((uint32_t)(b0 + j) ^ klo) ^ khi);           \
                    r[j] = UNIFORM(h);                                                     \
                }                                                                          \
                if (binary) {                                                              \
                    for (int64_t j = 0; j < n; j++)                                        \
                        pp[j] = COPYSIGN(unit, x[j] - unit * (r[j] + r[j] - (T)1));        \
                } else {                                                                   \
                    for (int64_t j = 0; j < n; j++) {                                      \
                        T v = x[j] / u + r[j], q = RINT(v);                                \
                        q -= (T)(q > v); /* floor(v), without a branch */                  \
                        q = q < -top ? -top : q;                                           \
                        pp[j] = (q > top ? top : q) * unit;                                \
                    }                                                                      \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }

/* uniform in [0, 1): float32 from the top 24 bits of h; float64 from 53 bits, h and a
 * second hash of it */
#define UNIFORM_F(h) ((float)(int32_t)((h) >> 8) * 0x1.0p-24f)
#define UNIFORM_D(h)                                                                       \
    ((double)(int64_t)(((uint64_t)(h) << 21) | (hash32((h) ^ 0x9E3779B9u) >> 11)) * 0x1.0p-53)

#ifdef HAVE_FMA_TARGET
DEFINE_SEGMENT(seg_f32_fma, FMA_ATTR, float, FLT_MIN, __builtin_fmaf, __builtin_rintf,
               __builtin_copysignf, UNIFORM_F)
DEFINE_SEGMENT(seg_f64_fma, FMA_ATTR, double, DBL_MIN, __builtin_fma, __builtin_rint,
               __builtin_copysign, UNIFORM_D)
DEFINE_SEGMENT(seg_f32_512, AVX512_ATTR, float, FLT_MIN, __builtin_fmaf, __builtin_rintf,
               __builtin_copysignf, UNIFORM_F)
DEFINE_SEGMENT(seg_f64_512, AVX512_ATTR, double, DBL_MIN, __builtin_fma, __builtin_rint,
               __builtin_copysign, UNIFORM_D)
#endif
DEFINE_SEGMENT(seg_f32, , float, FLT_MIN, fmaf, rintf, copysignf, UNIFORM_F)
DEFINE_SEGMENT(seg_f64, , double, DBL_MIN, fma, rint, copysign, UNIFORM_D)

/* Elements [b0, b1), split at row boundaries (row length L, units per row or one). */
static void run_range(void *p, const void *g, void *buf, const void *units, int per_row,
                      int is_double, int64_t L, int64_t b0, int64_t b1, const opts_t *o) {
    int fast = current_variant();
    (void)fast; /* unused without the FMA targets */
    for (int64_t k = b0; k < b1;) {
        int64_t row = k / L, end = (row + 1) * L < b1 ? (row + 1) * L : b1;
        int64_t ui = per_row ? row : 0;
#ifdef HAVE_FMA_TARGET
#define DISPATCH(T, S)                                                                     \
    do {                                                                                   \
        T un = ((const T *)units)[ui];                                                     \
        if (fast == 2) seg_##S##_512(p, g, buf, un, k, end, o);                            \
        else if (fast) seg_##S##_fma(p, g, buf, un, k, end, o);                            \
        else seg_##S(p, g, buf, un, k, end, o);                                            \
    } while (0)
#else
#define DISPATCH(T, S) seg_##S(p, g, buf, ((const T *)units)[ui], k, end, o)
#endif
        if (is_double) DISPATCH(double, f64); else DISPATCH(float, f32);
#undef DISPATCH
        k = end;
    }
}

static PyObject *sgd_round(PyObject *self, PyObject *args) {
    PyObject *objs[4];
    Py_buffer views[4];
    int held = 0, is_double = 0, threads, per_row;
    long long rows, n;
    opts_t o;
    unsigned long long key;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOLpddddppppdKi", &objs[0], &objs[1], &objs[2], &objs[3],
                          &rows, &per_row, &o.lr, &o.momentum, &o.dampening, &o.wd, &o.nesterov,
                          &o.maximize, &o.first, &o.stochastic, &o.top, &key, &threads))
        return NULL;
    o.key = key;
    o.use_buf = o.momentum != 0.0;
    if (rows <= 0) {
        PyErr_Format(PyExc_ValueError, "rows must be positive, got %lld", rows);
        return NULL;
    }
    if (!(o.top >= -1.0) || o.top != floor(o.top)) {
        PyErr_SetString(PyExc_ValueError,
                        "top must be a whole number >= -1 (0: binary; -1: no rounding)");
        return NULL;
    }
    /* p fixes the element count and type; g and buf must match it */
    if (PyObject_GetBuffer(objs[0], &views[0], PyBUF_RECORDS_RO) < 0) return NULL;
    n = (long long)(views[0].len / (views[0].itemsize ? views[0].itemsize : 1));
    PyBuffer_Release(&views[0]);
    if (n <= 0 || n % rows) {
        PyErr_Format(PyExc_ValueError, "p has %lld elements, not a positive multiple of "
                     "rows = %lld", n, rows);
        return NULL;
    }
    static const char *names[4] = {"p", "g", "buf", "unit"};
    for (int k = 0; k < 4; k++) {
        int is_d;
        if (k == 2 && !o.use_buf) continue; /* no buffer with momentum 0 */
        int64_t len = k == 3 ? (per_row ? rows : 1) : n;
        if (get_float_buffer(objs[k], names[k], k == 0 || k == 2, len, 1, 1, &views[k],
                             &is_d) < 0)
            goto fail;
        held |= 1 << k;
        if (k == 0) is_double = is_d;
        else if (is_d != is_double) {
            PyErr_Format(PyExc_ValueError, "%s must have the element type of p (%s)",
                         names[k], is_double ? "float64" : "float32");
            goto fail;
        }
    }
    {
        void *p = views[0].buf, *buf = o.use_buf ? views[2].buf : NULL;
        const void *g = views[1].buf, *units = views[3].buf;
        int64_t L = n / rows, nchunks = (n + CHUNK - 1) / CHUNK;
        int nt = n < SERIAL_BELOW || threads < 1 ? 1 : threads;
        Py_BEGIN_ALLOW_THREADS
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t b0 = c * CHUNK, b1 = b0 + CHUNK < n ? b0 + CHUNK : n;
            run_range(p, g, buf, units, per_row, is_double, L, b0, b1, &o);
        }
        Py_END_ALLOW_THREADS
        (void)nt;
    }
    for (int k = 0; k < 4; k++)
        if (held & (1 << k)) PyBuffer_Release(&views[k]);
    Py_RETURN_NONE;
fail:
    for (int k = 0; k < 4; k++)
        if (held & (1 << k)) PyBuffer_Release(&views[k]);
    return NULL;
}

static PyMethodDef methods[] = {
    {"set_variant", set_variant, METH_VARARGS,
     "set_variant(v) -> the variant now running (tests: 0 generic, 1 AVX2, 2 AVX-512, -1"
     " the best the CPU has)"},
    {"sgd_round", sgd_round, METH_VARARGS,
     "sgd_round(p, g, buf, unit, rows, per_row, lr, momentum, dampening, weight_decay,"
     " nesterov, maximize, first, stochastic, top, key, threads): torch.optim.SGD's step on p (and"
     " its momentum buffer buf), then p rounded onto unit * codes (top = 0: binary), in"
     " one pass; see the file's comment"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cqstep", "SGD step and grid rounding in one pass (optional).",
    -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cqstep(void) { return PyModule_Create(&module); }
