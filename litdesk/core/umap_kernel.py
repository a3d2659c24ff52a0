"""UMAP's layout step, one epoch of stochastic gradient descent, as a single numba kernel.

Only the projection child process imports this module (it imports numba). The kernel is
umap-learn 0.5's ``_optimize_layout_euclidean_single_epoch`` with its defaults (the head and
tail embeddings are one array, ``move_other``, repulsion strength 1, no densMAP) and its
Tausworthe random numbers, so layouts keep umap-learn's quality; what it avoids is importing
umap-learn, whose import compiles pynndescent's numba code (umap-learn's cold run at 50,000
points took 49 s longer than its warm one in benchmarks/umap.py; this kernel compiles in
about 3 s, once).
"""

from __future__ import annotations

import numba
import numpy as np

_MASK32 = 0xFFFFFFFF


@numba.njit(inline="always")
def _tau_rand_int(state):
    """umap-learn's ``tau_rand_int``: a Tausworthe generator over three int64 words."""
    state[0] = (((state[0] & 4294967294) << 12) & _MASK32) ^ (
        (((state[0] << 13) & _MASK32) ^ state[0]) >> 19)
    state[1] = (((state[1] & 4294967288) << 4) & _MASK32) ^ (
        (((state[1] << 2) & _MASK32) ^ state[1]) >> 25)
    state[2] = (((state[2] & 4294967280) << 17) & _MASK32) ^ (
        (((state[2] << 3) & _MASK32) ^ state[2]) >> 11)
    return np.int32(state[0] ^ state[1] ^ state[2])


@numba.njit(inline="always")
def _squared_distance(x, y):
    result = np.float32(0.0)
    for d in range(x.shape[0]):
        diff = x[d] - y[d]
        result += diff * diff
    return result


@numba.njit(inline="always")
def _clip(value):
    return 4.0 if value > 4.0 else (-4.0 if value < -4.0 else value)


@numba.njit(fastmath=True, parallel=True)
def layout_epoch(embedding, head, tail, epochs_per_sample, a, b, rng_state_per_point, alpha,
                 epochs_per_negative_sample, epoch_of_next_negative_sample,
                 epoch_of_next_sample, epoch):
    """Move the points of ``embedding`` (float32, points × dims) along the edges due at
    ``epoch``, each with its negative samples; ``alpha`` is the learning rate. Updates
    ``embedding``, the schedules and the random states in place."""
    n_vertices, dims = embedding.shape
    for i in numba.prange(epochs_per_sample.shape[0]):
        if epoch_of_next_sample[i] > epoch:
            continue
        j = head[i]
        k = tail[i]
        current = embedding[j]
        other = embedding[k]
        dist_squared = _squared_distance(current, other)
        if dist_squared > 0.0:
            grad_coeff = -2.0 * a * b * pow(dist_squared, b - 1.0)
            grad_coeff /= a * pow(dist_squared, b) + 1.0
        else:
            grad_coeff = 0.0
        for d in range(dims):
            grad_d = _clip(grad_coeff * (current[d] - other[d]))
            current[d] += grad_d * alpha
            other[d] += -grad_d * alpha
        epoch_of_next_sample[i] += epochs_per_sample[i]
        n_negative = int((epoch - epoch_of_next_negative_sample[i])
                         / epochs_per_negative_sample[i])
        for _ in range(n_negative):
            k = _tau_rand_int(rng_state_per_point[j]) % n_vertices
            other = embedding[k]
            dist_squared = _squared_distance(current, other)
            if dist_squared > 0.0:
                grad_coeff = 2.0 * b / ((0.001 + dist_squared) * (a * pow(dist_squared, b) + 1))
            elif j == k:
                continue
            else:
                grad_coeff = 0.0
            for d in range(dims):
                grad_d = _clip(grad_coeff * (current[d] - other[d])) if grad_coeff > 0.0 else 0.0
                current[d] += grad_d * alpha
        epoch_of_next_negative_sample[i] += n_negative * epochs_per_negative_sample[i]


def cache_compiled_kernel() -> None:
    """Keep the compiled kernel in numba's on-disk cache (NUMBA_CACHE_DIR) from now on.

    Not a ``cache=True`` decoration: that fails at import where the module has no source
    file beside it (a frozen app), where running uncached is merely slower.
    """
    try:
        layout_epoch.enable_caching()
    except RuntimeError:  # "no locator available": compiled in every process instead
        pass
