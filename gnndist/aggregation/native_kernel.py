"""gnndist's own CPU kernels (aggregation, a neighbour-sampling hop, row copies, a process barrier): C source, built once per machine with the system compiler, loaded by ctypes.

Why a hand-written kernel: no library fits. torch's CSR SpMM is ~2.5x slower than DGL's ``gspmm`` on
CPU (0.32 s vs 0.134 s for a 4.09M-edge, 128-d sum here), DGL does not load with torch 2.13, and
torch-sparse/pyg-lib ship no wheels for it. Aggregation on CPU is bound by gathering source rows
from memory, so the kernel is what matters: each destination row is accumulated in SIMD registers
(256-byte chunks of the feature row) while the source rows a few edges ahead are prefetched, and the
rows are split over threads by edge count so power-law graphs balance.

The sampling hop is here for the same reason (pyg-lib's ``neighbor_sample`` has no wheel for this torch):
the torch sampler runs ~100 small tensor operations a batch, and at a worker's 256 seeds their fixed cost
is most of the batch (1.07 ms against 0.60-0.68 ms for this hop, 200k-node ``sbm``, fanouts [10, 5]).

The process barrier serves :mod:`gnndist.comm.shared_reduce`: workers of one machine meet in a shared page
(an arrival count and a generation; waiters sleep on a futex) instead of a one-element gloo all-reduce, whose
TCP threads cost ~1 CPU-s of every 14 of four mini-batch workers on 2 cores. Python cannot sleep on a word of
shared memory, so this one is in C too (Linux only; elsewhere the gloo barrier stays).

Why plain C + ctypes rather than a torch C++ extension or numba: it compiles in about a second
(``torch/extension.h`` takes a minute on two cores, too slow for a fresh CI machine), needs no
Python headers and no new dependency, and works with any torch version (the compat env's 2.2.1
too). Threads are POSIX threads, one per ``torch.get_num_threads()``, so no second OpenMP runtime
spins next to torch's. The build is cached under ``~/.cache/gnndist/kernels/<hash>/`` keyed by the
source, the compiler and the CPU flags (it is built with ``-march=native``), and written atomically.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <pthread.h>

#define VBYTES 32   /* one AVX register; narrower ISAs split it */
#define MAXV 8      /* vectors per chunk: 256 bytes of a feature row held in registers */
#define MAXT 256

typedef float vf32 __attribute__((vector_size(VBYTES)));
typedef double vf64 __attribute__((vector_size(VBYTES)));

typedef struct {
  const int64_t *indptr, *indices;
  const void *weight, *row_scale, *x;
  void *out;
  int64_t *arg;
  int64_t F, r0, r1, prefetch;
} Job;

static int64_t split_row(const int64_t *indptr, int64_t n_rows, int64_t target) {
  /* first row r with indptr[r] + r >= target: rows cost their edges plus one */
  int64_t lo = 0, hi = n_rows;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (indptr[mid] + mid < target) lo = mid + 1; else hi = mid;
  }
  return lo;
}

static void run_jobs(void *(*fn)(void *), Job *base, const int64_t *indptr, int64_t n_rows, int nthreads) {
  Job jobs[MAXT];
  pthread_t threads[MAXT];
  int started[MAXT];
  if (nthreads < 1) nthreads = 1;
  if (nthreads > MAXT) nthreads = MAXT;
  const int64_t total = indptr[n_rows] + n_rows;
  int64_t prev = 0;
  for (int t = 0; t < nthreads; ++t) {
    int64_t end = (t == nthreads - 1) ? n_rows : split_row(indptr, n_rows, total / nthreads * (t + 1));
    if (end < prev) end = prev;
    jobs[t] = *base;
    jobs[t].r0 = prev;
    jobs[t].r1 = end;
    prev = end;
  }
  for (int t = 1; t < nthreads; ++t) started[t] = pthread_create(&threads[t], NULL, fn, &jobs[t]) == 0;
  fn(&jobs[0]);
  for (int t = 1; t < nthreads; ++t) {
    if (started[t]) pthread_join(threads[t], NULL);
    else fn(&jobs[t]); /* could not start a thread: do its rows here */
  }
}

#define DEFINE_KERNELS(T, V, SUF)                                                                  \
static inline V load_##SUF(const T *p) { V v; memcpy(&v, p, sizeof(V)); return v; }               \
static inline void store_##SUF(T *p, V v) { memcpy(p, &v, sizeof(V)); }                           \
                                                                                                   \
/* out[d, c0 : c0 + nv * lanes] = sum_j w_j x[s_j, same columns], accumulated in registers */      \
static inline __attribute__((always_inline)) void chunk_sum_##SUF(const int64_t *restrict indices, const T *restrict w,           \
                                   const T *restrict x, T *restrict o, int64_t b, int64_t e,       \
                                   int64_t F, int64_t c0, int nv, int64_t prefetch) {              \
  V acc[MAXV];                                                                                     \
  for (int i = 0; i < nv; ++i) acc[i] = (V){0};                                                    \
  const int64_t nbytes = (int64_t)(nv * sizeof(V));                                                \
  for (int64_t j = b; j < e; ++j) {                                                                \
    if (prefetch && j + prefetch < e) {                                                            \
      const char *p = (const char *)(x + indices[j + prefetch] * F + c0);                          \
      for (int64_t c = 0; c < nbytes; c += 64) __builtin_prefetch(p + c);                          \
    }                                                                                              \
    const T *xs = x + indices[j] * F + c0;                                                         \
    const T ws = w ? w[j] : (T)1;                                                                  \
    for (int i = 0; i < nv; ++i) acc[i] += ws * load_##SUF(xs + i * (int64_t)(sizeof(V) / sizeof(T))); \
  }                                                                                                \
  for (int i = 0; i < nv; ++i) store_##SUF(o + c0 + i * (int64_t)(sizeof(V) / sizeof(T)), acc[i]); \
}                                                                                                  \
                                                                                                   \
static void *sum_rows_##SUF(void *arg) {                                                           \
  const Job *job = (const Job *)arg;                                                               \
  const int64_t *restrict indptr = job->indptr, *restrict indices = job->indices;                  \
  const T *restrict w = (const T *)job->weight, *restrict scale = (const T *)job->row_scale;      \
  const T *restrict x = (const T *)job->x;                                                         \
  const int64_t F = job->F, lanes = sizeof(V) / sizeof(T), nvec = F / lanes;                       \
  for (int64_t d = job->r0; d < job->r1; ++d) {                                                    \
    T *restrict o = (T *)job->out + d * F;                                                         \
    const int64_t b = indptr[d], e = indptr[d + 1];                                                \
    int64_t v = 0;                                                                                 \
    /* constant nv per call site, so each width gets its own register-resident loop */             \
    for (; v + MAXV <= nvec; v += MAXV) chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, MAXV, job->prefetch); \
    switch (nvec - v) {                                                                            \
      case 7: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 7, job->prefetch); break;      \
      case 6: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 6, job->prefetch); break;      \
      case 5: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 5, job->prefetch); break;      \
      case 4: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 4, job->prefetch); break;      \
      case 3: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 3, job->prefetch); break;      \
      case 2: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 2, job->prefetch); break;      \
      case 1: chunk_sum_##SUF(indices, w, x, o, b, e, F, v * lanes, 1, job->prefetch); break;      \
      default: break;                                                                              \
    }                                                                                              \
    for (int64_t k = nvec * lanes; k < F; ++k) {                                                   \
      T acc = 0;                                                                                   \
      for (int64_t j = b; j < e; ++j) acc += (w ? w[j] : (T)1) * x[indices[j] * F + k];            \
      o[k] = acc;                                                                                  \
    }                                                                                              \
    if (scale) {                                                                                   \
      const T s = scale[d];                                                                        \
      for (int64_t k = 0; k < F; ++k) o[k] *= s;                                                   \
    }                                                                                              \
  }                                                                                                \
  return NULL;                                                                                     \
}                                                                                                  \
                                                                                                   \
static void *max_rows_##SUF(void *arg) {                                                           \
  const Job *job = (const Job *)arg;                                                               \
  const int64_t *restrict indptr = job->indptr, *restrict indices = job->indices;                  \
  const T *restrict w = (const T *)job->weight, *restrict x = (const T *)job->x;                   \
  const int64_t F = job->F;                                                                        \
  for (int64_t d = job->r0; d < job->r1; ++d) {                                                    \
    T *restrict o = (T *)job->out + d * F;                                                         \
    int64_t *restrict a = job->arg + d * F;                                                        \
    const int64_t b = indptr[d], e = indptr[d + 1];                                                \
    if (b == e) {                                                                                  \
      for (int64_t k = 0; k < F; ++k) { o[k] = 0; a[k] = -1; }                                     \
      continue;                                                                                    \
    }                                                                                              \
    {                                                                                              \
      const T *xs = x + indices[b] * F;                                                            \
      const T ws = w ? w[b] : (T)1;                                                                \
      for (int64_t k = 0; k < F; ++k) { o[k] = ws * xs[k]; a[k] = b; }                             \
    }                                                                                              \
    for (int64_t j = b + 1; j < e; ++j) {                                                          \
      const T *xs = x + indices[j] * F;                                                            \
      const T ws = w ? w[j] : (T)1;                                                                \
      for (int64_t k = 0; k < F; ++k) {                                                            \
        const T m = ws * xs[k];                                                                    \
        const int better = m > o[k];                                                               \
        o[k] = better ? m : o[k];                                                                  \
        a[k] = better ? j : a[k];                                                                  \
      }                                                                                            \
    }                                                                                              \
  }                                                                                                \
  return NULL;                                                                                     \
}                                                                                                  \
                                                                                                   \
int gnd_spmm_sum_##SUF(const int64_t *indptr, const int64_t *indices, const T *weight,             \
                       const T *row_scale, const T *x, T *out, int64_t n_rows, int64_t F,          \
                       int nthreads, int64_t prefetch) {                                           \
  Job job = {indptr, indices, weight, row_scale, x, out, NULL, F, 0, 0, prefetch};                 \
  run_jobs(sum_rows_##SUF, &job, indptr, n_rows, nthreads);                                        \
  return 0;                                                                                        \
}                                                                                                  \
                                                                                                   \
int gnd_spmm_max_##SUF(const int64_t *indptr, const int64_t *indices, const T *weight,             \
                       const T *x, T *out, int64_t *arg, int64_t n_rows, int64_t F, int nthreads) { \
  Job job = {indptr, indices, weight, NULL, x, out, arg, F, 0, 0, 0};                              \
  run_jobs(max_rows_##SUF, &job, indptr, n_rows, nthreads);                                        \
  return 0;                                                                                        \
}                                                                                                  \
                                                                                                   \
/* out[indices[j]] += weight[j] * row_scale[d] * g[d] for every edge j of row d, one thread, rows  \
   in order: the transposed sum without building the transposed copy (out zeroed by the caller) */ \
int gnd_spmm_scatter_##SUF(const int64_t *restrict indptr, const int64_t *restrict indices,         \
                           const T *restrict weight, const T *restrict row_scale,                  \
                           const T *restrict g, T *restrict out, int64_t n_rows, int64_t F) {      \
  for (int64_t d = 0; d < n_rows; ++d) {                                                           \
    const T s = row_scale ? row_scale[d] : (T)1;                                                   \
    const T *restrict gd = g + d * F;                                                              \
    for (int64_t j = indptr[d]; j < indptr[d + 1]; ++j) {                                          \
      const T ws = weight ? weight[j] * s : s;                                                     \
      T *restrict o = out + indices[j] * F;                                                        \
      for (int64_t k = 0; k < F; ++k) o[k] += ws * gd[k];                                          \
    }                                                                                              \
  }                                                                                                \
  return 0;                                                                                        \
}

DEFINE_KERNELS(float, vf32, f32)
DEFINE_KERNELS(double, vf64, f64)

/* out row positions[i] = row ids[i] of x, for i < n: rows of row_bytes bytes, each copied once, every cache
   line of the source row 16 ids ahead prefetched (a batch's feature rows from a table, random rows: bound by
   memory latency; torch's index_select + index_copy_ copies each row twice). 200k x 128 float rows, 8000 ids:
   0.53-0.60 ms here, first line only 0.62-0.78 ms, torch's pair 1.35-2.59 ms. */
void gnd_copy_rows(const char *restrict x, const int64_t *restrict ids, char *restrict out,
                   const int64_t *restrict positions, int64_t n, int64_t row_bytes) {
  const int64_t ahead = 16;
  for (int64_t i = 0; i < n; ++i) {
    if (i + ahead < n) {
      const char *next = x + ids[i + ahead] * row_bytes;
      for (int64_t c = 0; c < row_bytes; c += 64) __builtin_prefetch(next + c);
    }
    memcpy(out + positions[i] * row_bytes, x + ids[i] * row_bytes, (size_t)row_bytes);
  }
}

/* ---- a barrier of processes that map the same page (gnndist.comm.shared_reduce) ---- */
#ifdef __linux__
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* words[0] counts the arrivals, words[1] is the generation. Returns -1 when this call was the last arrival (it resets
   the count, then bumps the generation and wakes the waiters: the count is 0 before anyone leaves), else the
   generation to wait on. The acq_rel add publishes what this process wrote before arriving. */
int64_t gnd_barrier_arrive(int32_t *words, int32_t parties) {
  int32_t *count = words, *gen = words + 1;
  int32_t g = __atomic_load_n(gen, __ATOMIC_ACQUIRE);
  if (__atomic_fetch_add(count, 1, __ATOMIC_ACQ_REL) == parties - 1) {
    __atomic_store_n(count, 0, __ATOMIC_RELAXED);
    __atomic_store_n(gen, (int32_t)((uint32_t)g + 1u), __ATOMIC_RELEASE); /* wraps after 2^32 barriers, no overflow */
    syscall(SYS_futex, gen, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return -1;
  }
  return g;
}

/* Sleeps until the generation leaves g (returns 1) or timeout_ns pass (returns 0). Shared futex (not
   FUTEX_PRIVATE_FLAG): the waiters are other processes. */
int gnd_barrier_wait(int32_t *words, int32_t g, int64_t timeout_ns) {
  int32_t *gen = words + 1;
  struct timespec now, end;
  clock_gettime(CLOCK_MONOTONIC, &now);
  end.tv_sec = now.tv_sec + (time_t)(timeout_ns / 1000000000LL);
  end.tv_nsec = now.tv_nsec + (long)(timeout_ns % 1000000000LL);
  if (end.tv_nsec >= 1000000000L) { end.tv_sec += 1; end.tv_nsec -= 1000000000L; }
  while (__atomic_load_n(gen, __ATOMIC_ACQUIRE) == g) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t left = (int64_t)(end.tv_sec - now.tv_sec) * 1000000000LL + (end.tv_nsec - now.tv_nsec);
    if (left <= 0) return 0;
    struct timespec wait = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
    syscall(SYS_futex, gen, FUTEX_WAIT, g, &wait, NULL, 0); /* returns at once if the generation moved */
  }
  return 1;
}
#endif

/* ---- neighbour sampling: one hop of gnndist.sampling.NeighborSampler on the CPU ---- */
static inline uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static inline int64_t below(uint64_t *state, int64_t n) { /* uniform in [0, n): Lemire's multiply-shift (bias < n / 2^64) */
  return (int64_t)(((__uint128_t)splitmix64(state) * (uint64_t)n) >> 64);
}

/* Picks in-edges of rows nodes[0..n) (row r's picks at edge_ids[sum of earlier rows' picks ...]): all of them
   when fanout < 0 or (without replacement) degree <= fanout, in CSR order; `fanout` uniform draws with
   replacement; else `fanout` distinct ones by Floyd's algorithm, in the order drawn. Each pick's source gets
   its local id from the scratch map, unseen sources numbered next_id, next_id + 1, ... in order of first
   appearance (and appended to new_nodes); returns how many were new. The rows' CSR entries are prefetched a
   few rows ahead: a row's picks wait on two dependent cache misses (indptr, then indices). */
int64_t gnd_sample_hop(const int64_t *restrict indptr, const int64_t *restrict indices, const int64_t *restrict nodes,
                       int64_t n, int64_t fanout, int replace, uint64_t state, int32_t *restrict local_id,
                       int64_t next_id, int64_t *restrict edge_ids, int64_t *restrict sources, int64_t *restrict new_nodes) {
  const int64_t ahead = 8;
  int64_t e = 0, found = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (r + 2 * ahead < n) __builtin_prefetch(indptr + nodes[r + 2 * ahead]);
    if (r + ahead < n) __builtin_prefetch(indices + indptr[nodes[r + ahead]]);
    const int64_t b = indptr[nodes[r]], d = indptr[nodes[r] + 1] - b, first = e;
    if (fanout < 0 || (!replace && d <= fanout)) {
      for (int64_t j = 0; j < d; ++j) edge_ids[e++] = b + j;
    } else if (replace) {
      if (d > 0) for (int64_t s = 0; s < fanout; ++s) edge_ids[e++] = b + below(&state, d);
    } else {
      for (int64_t s = 0; s < fanout; ++s) { /* draw t in [0, j]; if already kept, keep j (never kept before) */
        const int64_t j = d - fanout + s;
        int64_t t = b + below(&state, j + 1);
        for (int64_t q = first; q < e; ++q) if (edge_ids[q] == t) { t = b + j; break; }
        edge_ids[e++] = t;
      }
    }
    for (int64_t q = first; q < e; ++q) {
      const int64_t u = indices[edge_ids[q]];
      int32_t id = local_id[u];
      if (id == INT32_MAX) { id = (int32_t)next_id++; local_id[u] = id; new_nodes[found++] = u; }
      sources[q] = id;
    }
  }
  return found;
}
"""

BASE_FLAGS = ("-O3", "-fPIC", "-shared", "-pthread", "-fno-math-errno", "-std=gnu11")
NATIVE_FLAGS = ("-march=native",)
PREFETCH_EDGES = 4  # source rows prefetched this many edges ahead (measured best of 0/4/8 here)
_DTYPES = {torch.float32: ("f32", ctypes.c_float), torch.float64: ("f64", ctypes.c_double)}


@dataclass(frozen=True)
class NativeLibrary:
    """The loaded kernel library and how it was obtained.

    Attributes:
        path: the shared object.
        compile_seconds: time spent compiling in this process (0.0 when it came from the cache).
        flags: compiler flags it was built with.
    """

    handle: ctypes.CDLL
    path: Path
    compile_seconds: float
    flags: tuple[str, ...]

    def spmm_sum(self, indptr: Tensor, indices: Tensor, weight: Tensor | None, row_scale: Tensor | None, x: Tensor, out: Tensor, num_threads: int) -> None:
        """``out[d] = row_scale[d] * sum_j weight[j] * x[indices[j]]`` over CSR rows (all tensors contiguous, CPU)."""
        suffix, _ = _DTYPES[x.dtype]
        getattr(self.handle, f"gnd_spmm_sum_{suffix}")(
            _ptr(indptr), _ptr(indices), _ptr(weight), _ptr(row_scale), _ptr(x), _ptr(out),
            ctypes.c_int64(out.size(0)), ctypes.c_int64(out.size(1)), ctypes.c_int(num_threads), ctypes.c_int64(PREFETCH_EDGES),
        )

    def spmm_scatter(self, indptr: Tensor, indices: Tensor, weight: Tensor | None, row_scale: Tensor | None, grad_out: Tensor, grad_x: Tensor) -> None:
        """``grad_x[indices[j]] += weight[j] * row_scale[d] * grad_out[d]`` over CSR rows ``d``, on one thread (``grad_x`` zeroed)."""
        suffix, _ = _DTYPES[grad_out.dtype]
        getattr(self.handle, f"gnd_spmm_scatter_{suffix}")(
            _ptr(indptr), _ptr(indices), _ptr(weight), _ptr(row_scale), _ptr(grad_out), _ptr(grad_x),
            ctypes.c_int64(grad_out.size(0)), ctypes.c_int64(grad_out.size(1)),
        )

    def spmm_max(self, indptr: Tensor, indices: Tensor, weight: Tensor | None, x: Tensor, out: Tensor, arg: Tensor, num_threads: int) -> None:
        """``out[d] = max_j weight[j] * x[indices[j]]`` and ``arg[d]`` = the edge that won (-1 for empty rows)."""
        suffix, _ = _DTYPES[x.dtype]
        getattr(self.handle, f"gnd_spmm_max_{suffix}")(
            _ptr(indptr), _ptr(indices), _ptr(weight), _ptr(x), _ptr(out), _ptr(arg),
            ctypes.c_int64(out.size(0)), ctypes.c_int64(out.size(1)), ctypes.c_int(num_threads),
        )

    def copy_rows(self, rows: Tensor, ids: Tensor, out: Tensor, positions: Tensor) -> None:
        """``out[positions[i]] = rows[ids[i]]``, each row copied once (contiguous CPU ``rows`` and ``out`` of one row size, int64 contiguous valid ids and positions)."""
        self.handle.gnd_copy_rows(_ptr(rows), _ptr(ids), _ptr(out), _ptr(positions), ctypes.c_int64(ids.numel()), ctypes.c_int64(rows.size(1) * rows.element_size()))

    @property
    def has_barrier(self) -> bool:
        """Whether the process barrier of :meth:`barrier_arrive` and :meth:`barrier_wait` is built (Linux: it sleeps on a futex)."""
        return hasattr(self.handle, "gnd_barrier_arrive")

    def barrier_arrive(self, words: Tensor, parties: int) -> int:
        """Arrives at the barrier of the two ``int32`` ``words`` (a count and a generation, in memory every party maps);
        returns -1 when this was the last arrival (all have arrived), else the generation to :meth:`barrier_wait` on."""
        return self.handle.gnd_barrier_arrive(_ptr(words), ctypes.c_int32(parties))

    def barrier_wait(self, words: Tensor, generation: int, timeout_s: float) -> bool:
        """Sleeps until every party has arrived (True) or ``timeout_s`` pass (False: call again to keep waiting)."""
        return bool(self.handle.gnd_barrier_wait(_ptr(words), ctypes.c_int32(generation), ctypes.c_int64(int(timeout_s * 1e9))))

    def sample_hop(self, indptr: Tensor, indices: Tensor, nodes: Tensor, fanout: int, replace: bool, state: int, local_id: Tensor, next_id: int, edge_ids: Tensor, sources: Tensor, new_nodes: Tensor) -> int:
        """One sampling hop from rows ``nodes`` (int64 CSR and ids, ``int32`` scratch map ``local_id``, all contiguous CPU):
        fills ``edge_ids`` and ``sources`` (the picks' local ids) and the start of ``new_nodes``; returns how many nodes were new.

        ``edge_ids``, ``sources`` and ``new_nodes`` hold the hop's number of picks (known from the rows'
        degrees); ``state`` seeds the hop's random stream.
        """
        return self.handle.gnd_sample_hop(
            _ptr(indptr), _ptr(indices), _ptr(nodes), ctypes.c_int64(nodes.numel()), ctypes.c_int64(fanout), ctypes.c_int(bool(replace)),
            ctypes.c_uint64(state), _ptr(local_id), ctypes.c_int64(next_id), _ptr(edge_ids), _ptr(sources), _ptr(new_nodes),
        )


def supported_dtypes() -> tuple[torch.dtype, ...]:
    return tuple(_DTYPES)


def _ptr(tensor: Tensor | None) -> ctypes.c_void_p | None:
    return None if tensor is None else ctypes.c_void_p(tensor.data_ptr())


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/gnndist/kernels`` (``~/.cache/gnndist/kernels`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gnndist" / "kernels"


def _find_compiler() -> str:
    for name in ("cc", "gcc", "clang"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no C compiler found on PATH (looked for cc, gcc, clang)")


def _cpu_signature() -> str:
    """What ``-march=native`` depends on: the machine and its CPU feature flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        source = Path(tmp) / "gnndist_aggregation.c"
        source.write_text(C_SOURCE)
        built = Path(tmp) / target.name
        result = subprocess.run([compiler, *flags, str(source), "-o", str(built)], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        os.replace(built, target)  # atomic: concurrent builders each install a complete file


@functools.cache
def load_native_library() -> NativeLibrary:
    """Builds (once per machine) and loads the kernel library; raises RuntimeError saying why it cannot."""
    if platform.system() not in ("Linux", "Darwin"):
        raise RuntimeError(f"the native kernel is built for Linux and macOS (this is {platform.system()})")
    compiler = _find_compiler()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    errors = []
    for flags in (BASE_FLAGS + NATIVE_FLAGS, BASE_FLAGS):
        key = hashlib.sha256("\n".join([C_SOURCE, compiler, *version, *flags, _cpu_signature()]).encode()).hexdigest()[:16]
        target = cache_root() / key / "libgnndist_aggregation.so"
        start = time.perf_counter()
        try:
            if not target.exists():
                _compile(compiler, flags, target)
                seconds = time.perf_counter() - start
            else:
                seconds = 0.0
            handle = ctypes.CDLL(str(target))
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
            errors.append(f"{' '.join(flags)}: {error}")
            continue
        for name in ("gnd_spmm_sum_f32", "gnd_spmm_sum_f64", "gnd_spmm_max_f32", "gnd_spmm_max_f64", "gnd_spmm_scatter_f32", "gnd_spmm_scatter_f64"):
            getattr(handle, name).restype = ctypes.c_int
        handle.gnd_sample_hop.restype = ctypes.c_int64
        handle.gnd_copy_rows.restype = None
        if hasattr(handle, "gnd_barrier_arrive"):  # Linux only (futex)
            handle.gnd_barrier_arrive.restype = ctypes.c_int64
            handle.gnd_barrier_wait.restype = ctypes.c_int
        return NativeLibrary(handle, target, seconds, flags)
    raise RuntimeError("could not build the native aggregation kernel: " + " | ".join(errors))


@functools.cache
def native_status() -> tuple[bool, str]:
    """Whether the native kernel builds and loads here, with the library path or the error."""
    try:
        library = load_native_library()
    except RuntimeError as error:
        return False, str(error)
    return True, str(library.path)


def native_library() -> NativeLibrary | None:
    """The kernel library where it builds and loads here, else None: for callers with a torch path to fall back on."""
    return load_native_library() if native_status()[0] else None
