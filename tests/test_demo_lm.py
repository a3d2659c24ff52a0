"""The demo's tiny causal language model: small, loadable through the plugin, deterministic, and
continuing demo prompts with the corpus's own words."""

from __future__ import annotations

import csv
import re

from litdesk.api import LoadOptions
from litdesk.core.jobs import run_job
from litdesk.core.paths import DEMO_DATASET
from litdesk.core.paths import DEMO_LM as TINY_LM
from litdesk.core.sequence_salience import continuation_job


PROMPTS = ["The food was", "I would not recommend", "The hotel room"]


def test_the_model_files_stay_under_two_megabytes():
    sizes = {file.name: file.stat().st_size for file in TINY_LM.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(sizes)
    assert sum(sizes.values()) < 2 * 2**20


def test_it_loads_as_a_causal_lm_and_continues_prompts_deterministically():
    from litdesk_transformers.language_models import HFCausalLM
    from litdesk_transformers.loader import load

    first, second = (load(TINY_LM, LoadOptions(device="cpu")) for _ in range(2))
    assert isinstance(first, HFCausalLM)
    continuations = first.generate(PROMPTS)
    assert continuations == second.generate(PROMPTS)
    # Alone or batched with others, a prompt gets the same continuation.
    assert run_job(continuation_job(second, PROMPTS[0])) == continuations[0]
    with DEMO_DATASET.open(encoding="utf-8", newline="") as handle:
        corpus_words = {word for row in csv.DictReader(handle)
                        for word in re.findall(r"[a-z']+", row["text"].lower())}
    for continuation in continuations:
        words = re.findall(r"[a-z']+", continuation.lower())
        known = [word in corpus_words for word in words]
        assert len(words) >= 3 and sum(known) >= 0.6 * len(words), continuation
