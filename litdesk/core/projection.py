"""Projecting embeddings to 2D for the projector."""

from __future__ import annotations

import numpy as np

from litdesk.core.jobs import Job, Progress


def pca_job(vectors: np.ndarray, dims: int = 2, seed: int = 0) -> Job[np.ndarray]:
    """PCA of ``vectors`` (rows × features) to ``dims`` columns (scikit-learn, imported lazily)."""
    yield Progress(0, 2, "PCA: fitting")
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    components = min(dims, vectors.shape[1], max(1, vectors.shape[0]))
    coords = PCA(n_components=components, random_state=seed).fit_transform(vectors)
    if coords.shape[1] < dims:  # a 1-feature input still yields 2 columns to plot
        coords = np.hstack([coords, np.zeros((len(coords), dims - coords.shape[1]))])
    yield Progress(2, 2, "PCA: done")
    return coords.astype(np.float32)
