"""Language-model heads: causal (``*ForCausalLM``, ``*LMHeadModel``) and masked (``*ForMaskedLM``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from litdesk.api import GeneratedText, Spec, TokenTopKPreds
from litdesk.api.model import EmbeddedSequence
from litdesk_transformers.base import (
    Batch,
    Example,
    HFTextModel,
    ScoredCandidates,
    ranked,
    top_candidates,
)


class HFLanguageModel(HFTextModel):
    """What both kinds of language model share: the ``top_k`` most likely tokens per position."""

    #: Candidates listed per position.
    top_k = 10
    #: Logits span the whole vocabulary: smaller batches than classifiers.
    batch_size = 8

    def output_settings(self) -> dict[str, Any]:
        return {"top_k": self.top_k}

    def token_candidates(self, logits: Any, batch: Batch) -> list[list[ScoredCandidates]]:
        """Per example and real position, the ``top_k`` tokens with their probabilities."""
        probabilities, token_ids = top_candidates(logits, self.top_k)
        candidates = []
        for row, kept in enumerate(batch.kept):
            ids = token_ids[row, kept]
            names = self.tokenizer.convert_ids_to_tokens(ids.ravel().tolist())
            k = ids.shape[1]
            candidates.append([ranked(names[i * k:(i + 1) * k], probabilities[row, position])
                               for i, position in enumerate(kept)])
        return candidates


class HFCausalLM(HFLanguageModel):
    """A causal language model.

    ``next_token_preds[i]`` lists the most likely tokens to follow ``tokens[i]`` (so the last entry
    predicts what comes after the text). ``generated_text`` continues the text greedily by up to
    ``max_new_tokens`` tokens (the continuation only, special tokens dropped). Gradients are those
    of the text's log-likelihood, the sum of log p(token i | tokens before i) over its tokens.
    """

    has_gradients = True
    #: The most tokens ``generated_text`` adds; fewer when the end token comes first or the
    #: model's context is full.
    max_new_tokens = 16

    def output_settings(self) -> dict[str, Any]:
        return {**super().output_settings(), "max_new_tokens": self.max_new_tokens}

    def task_spec(self) -> Spec:
        return {"next_token_preds": TokenTopKPreds(align="tokens"), "generated_text": GeneratedText()}

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        candidates = self.token_candidates(out.logits, batch)
        results = [{"next_token_preds": predicted} for predicted in candidates]
        if "generated_text" in fields:  # generation costs a forward pass per new token
            texts = self.generate([str(example.get("text") or "") for example in inputs])
            for result, text in zip(results, texts):
                result["generated_text"] = text
        return results

    def explained_scores(self, out: Any, batch: Batch, inputs: Sequence[Example]) -> Any:
        log_probs = out.logits[:, :-1].float().log_softmax(dim=-1)
        token_log_probs = log_probs.gather(-1, batch.input_ids[:, 1:, None])[..., 0]
        return (token_log_probs * batch.mask[:, 1:]).sum(dim=-1)

    # --- Sequence salience (litdesk.api.model.SequenceGradientModel) ----------

    def embed_sequence(self, text: str) -> EmbeddedSequence:
        """``text`` tokenized (truncated to ``max_length``) with each token's character span, and
        its input token embeddings (1 × tokens × width) to take gradients through."""
        import torch

        with self._lock:
            encoded = self.tokenizer(text, truncation=True, max_length=self.max_length,
                                     return_offsets_mapping=True)
        token_ids = torch.tensor([encoded["input_ids"]], device=self.device)
        with torch.no_grad():
            embeddings = self.network.get_input_embeddings()(token_ids)
        return EmbeddedSequence(
            tokens=tuple(self.tokenizer.convert_ids_to_tokens(encoded["input_ids"])),
            offsets=np.asarray(encoded["offset_mapping"], dtype=np.int64).reshape(-1, 2),
            token_ids=token_ids, embeddings=embeddings)

    def span_log_probability(self, embeddings: Any, token_ids: Any, first: int, end: int) -> Any:
        """Per row of ``embeddings`` (batch × tokens × width), the log-probability of the tokens
        ``token_ids[0, first:end]`` each given the tokens before it; differentiable."""
        import torch

        with self._lock:
            self._use_attention_implementation(self._fast_attention)
            with torch.inference_mode(False), self._autocast():
                logits = self.network(inputs_embeds=embeddings[:, :end]).logits
        log_probs = logits[:, first - 1:end - 1].float().log_softmax(dim=-1)
        targets = token_ids[:, first:end].expand(len(embeddings), -1)
        return log_probs.gather(-1, targets[..., None])[..., 0].sum(dim=-1)

    def generate(self, texts: Sequence[str]) -> list[str]:
        """Greedy continuations of ``texts``, each as if generated alone.

        Texts are generated together (left-padded, as generation needs), except those too close
        to the end of the model's context for ``max_new_tokens``: they go in groups of equal room.
        """
        lengths = [len(kept) for kept in self.encode(texts).kept]
        budgets = [self.max_new_tokens if self.max_positions is None
                   else max(0, min(self.max_new_tokens, self.max_positions - length))
                   for length in lengths]
        generated = ["" for _ in texts]
        for budget in set(budgets) - {0}:
            rows = [row for row, row_budget in enumerate(budgets) if row_budget == budget]
            for row, text in zip(rows, self._generate_greedily([texts[row] for row in rows], budget)):
                generated[row] = text
        return generated

    def _generate_greedily(self, texts: Sequence[str], new_tokens: int) -> list[str]:
        import torch
        import transformers

        prompt = self.encode(texts, padding_side="left")
        end = self.network.generation_config.eos_token_id
        greedy = transformers.GenerationConfig(
            max_new_tokens=new_tokens, do_sample=False, num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id if end is None else end,
            pad_token_id=self.tokenizer.pad_token_id)
        with torch.inference_mode():
            sequences = self.network.generate(input_ids=prompt.input_ids,
                                              attention_mask=prompt.inputs["attention_mask"],
                                              generation_config=greedy)
        return self.tokenizer.batch_decode(sequences[:, prompt.input_ids.shape[1]:],
                                           skip_special_tokens=True)


class HFMaskedLM(HFLanguageModel):
    """A masked language model: ``pred_tokens[i]`` lists the most likely tokens at position i (the
    fill-ins where the text has the mask token, e.g. ``[MASK]``)."""

    def task_spec(self) -> Spec:
        return {"pred_tokens": TokenTopKPreds(align="tokens")}

    def task_outputs(self, out: Any, batch: Batch, inputs: Sequence[Example],
                     fields: Collection[str]) -> list[dict[str, Any]]:
        return [{"pred_tokens": predicted} for predicted in self.token_candidates(out.logits, batch)]
