"""Train the tiny causal language model that ships with the demo, on the demo sentiment corpus.

    python litdesk/resources/demo/train_lm.py [--data CSV] [--out DIR] [--epochs N]

Reads the ``text`` column of CSV (default litdesk/resources/demo/sentiment.csv) and writes DIR (default
litdesk/resources/demo/models/tiny_lm/): a byte-level BPE tokenizer trained on the train split and a
GPT-2-style model (2 layers, 64 wide, 4 heads) trained from scratch on CPU to predict each text
followed by the end token, saved with ``save_pretrained`` (safetensors) beside its tokenizer.
It prints the training loss per epoch and the perplexity on the test split, measured after
loading the saved folder back through the litdesk plugin. Seeds are fixed; on the same machine
and library versions a run writes the same files. ``train.py`` (the classifiers) is separate so
that each script reproduces its own models.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(DEMO_DIR))
from train import folder_size, read_splits  # noqa: E402  (the classifiers' script, same folder)

SEED = 13
END_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 1000
MAX_LENGTH = 96
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
WARMUP_FRACTION = 0.05


def train_tokenizer(texts: list[str]):
    """A byte-level BPE tokenizer (GPT-2's scheme) trained on ``texts``, as a GPT2TokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import GPT2TokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=True)
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=[END_TOKEN], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return GPT2TokenizerFast(tokenizer_object=bpe, model_max_length=MAX_LENGTH,
                             bos_token=END_TOKEN, eos_token=END_TOKEN, unk_token=END_TOKEN)


def encode(tokenizer, texts: list[str]):
    """Each text's token ids followed by the end token, right-padded, and the mask of real ids."""
    import torch

    ids = [tokenizer(text)["input_ids"][:MAX_LENGTH - 1] + [tokenizer.eos_token_id] for text in texts]
    longest = max(map(len, ids))
    input_ids = torch.full((len(ids), longest), tokenizer.eos_token_id)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for row, row_ids in enumerate(ids):
        input_ids[row, :len(row_ids)] = torch.tensor(row_ids)
        mask[row, :len(row_ids)] = 1
    return input_ids, mask


def mean_token_loss(model, input_ids, mask):
    """Cross-entropy of each real next token (the padding is never a target), and its count."""
    import torch

    logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
    targets = input_ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             targets.reshape(-1), ignore_index=-100)
    return loss, int(mask[:, 1:].sum())


def train_lm(tokenizer, texts: list[str], held_out: list[str], epochs: int):
    """A 2-layer GPT-2 trained from scratch with AdamW and a linear warmup/decay; prints the
    training loss and the perplexity on ``held_out`` after each epoch."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=len(tokenizer), n_positions=MAX_LENGTH, n_embd=64, n_layer=2,
                        n_head=4, n_inner=256, bos_token_id=tokenizer.eos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
                        resid_pdrop=0.2, embd_pdrop=0.2, attn_pdrop=0.2)
    model = GPT2LMHeadModel(config)
    input_ids, mask = encode(tokenizer, texts)
    steps = epochs * -(-len(texts) // BATCH_SIZE)
    warmup = max(1, int(WARMUP_FRACTION * steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))))
    order_generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(1, epochs + 1):
        started, total_loss, total_tokens = time.perf_counter(), 0.0, 0
        for batch in torch.randperm(len(texts), generator=order_generator).split(BATCH_SIZE):
            width = int(mask[batch].sum(1).max())
            loss, tokens = mean_token_loss(model, input_ids[batch, :width], mask[batch, :width])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * tokens
            total_tokens += tokens
        seconds = time.perf_counter() - started
        held_out_perplexity = perplexity(model.eval(), tokenizer, held_out)
        model.train()
        print(f"  epoch {epoch}/{epochs}: loss {total_loss / total_tokens:.4f}, held-out "
              f"perplexity {held_out_perplexity:.1f} ({seconds:.1f} s)", flush=True)
    return model.eval(), total_loss / total_tokens


def perplexity(network, tokenizer, texts: list[str]) -> float:
    """exp of the mean next-token cross-entropy over ``texts`` (end tokens included)."""
    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH_SIZE):
            loss, tokens = mean_token_loss(network, *encode(tokenizer, texts[start:start + BATCH_SIZE]))
            total, count = total + loss.item() * tokens, count + tokens
    return math.exp(total / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_DIR / "sentiment.csv", help="the demo CSV")
    parser.add_argument("--out", type=Path, default=DEMO_DIR / "models" / "tiny_lm",
                        help="the model folder to write")
    parser.add_argument("--epochs", type=int, default=25, help="training epochs")
    args = parser.parse_args()

    import torch

    from litdesk.api import LoadOptions
    from litdesk_transformers.loader import load

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)  # one thread: as fast for a model this small, and reproducible
    train, test = read_splits(args.data)
    texts = [row["text"] for row in train]
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)

    started = time.perf_counter()
    tokenizer = train_tokenizer(texts)
    model, train_loss = train_lm(tokenizer, texts, [row["text"] for row in test], args.epochs)
    seconds = time.perf_counter() - started
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)

    loaded = load(args.out, LoadOptions(device="cpu"))
    test_perplexity = perplexity(loaded.network, tokenizer, [row["text"] for row in test])
    train_perplexity = perplexity(loaded.network, tokenizer, texts)
    print(f"tiny_lm: {sum(p.numel() for p in model.parameters()):,} parameters, vocabulary "
          f"{len(tokenizer)}, {args.epochs} epochs in {seconds:.0f} s, "
          f"{folder_size(args.out) / 1e6:.2f} MB")
    print(f"final training loss {train_loss:.3f}; perplexity train {train_perplexity:.1f}, "
          f"test {test_perplexity:.1f}")
    for prompt in ("The food was", "I would not recommend", "The battery"):
        print(f"  {prompt!r} -> {loaded.generate([prompt])[0]!r}")


if __name__ == "__main__":
    main()
