"""CUDA paths, run where a GPU is present (skipped elsewhere): device choice and agreement
of GPU and CPU predictions and gradients on the shipped demo model."""

from __future__ import annotations

import numpy as np
import pytest

from litdesk.api import LoadOptions

from litdesk.core import paths
from litdesk.api.device import best_device

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
BERT = paths.DEMO_MODELS[0]


def test_cuda_is_chosen_automatically_and_can_be_overridden(monkeypatch):
    assert best_device() == "cuda"
    assert best_device("cpu") == "cpu"
    monkeypatch.setenv("LITDESK_DEVICE", "cpu")
    assert best_device() == "cpu"


def test_gpu_and_cpu_agree_on_the_demo_model():
    from litdesk.core.jobs import run_job
    from litdesk.core.loaders import load_dataset
    from litdesk.core.model_loading import load_model
    from litdesk.core.predict import model_inputs, predict_job

    dataset = load_dataset(paths.DEMO_DATASET)
    on_gpu, on_cpu = load_model(BERT), load_model(BERT, LoadOptions(device="cpu"))
    assert next(on_gpu.network.parameters()).device.type == "cuda"
    gpu = run_job(predict_job(on_gpu, dataset))
    cpu = run_job(predict_job(on_cpu, dataset))
    np.testing.assert_allclose(gpu.fields["probas"], cpu.fields["probas"], atol=2e-4)
    np.testing.assert_allclose(gpu.fields["cls_emb"], cpu.fields["cls_emb"], atol=2e-3)
    (example,) = model_inputs(on_gpu, dataset, [3])
    grad_gpu = on_gpu.predict([example])[0]["token_grad_text"]
    grad_cpu = on_cpu.predict([example])[0]["token_grad_text"]
    np.testing.assert_allclose(grad_gpu, grad_cpu, atol=1e-4, rtol=1e-3)
