"""Train the two demo models that ship with litdesk from the demo sentiment dataset.

    python litdesk/resources/demo/train.py [--data CSV] [--out DIR] [--epochs N]

Reads CSV (default litdesk/resources/demo/sentiment.csv) and writes into DIR (default
litdesk/resources/demo/models/):

- ``bert_tiny/``: a lowercase WordPiece tokenizer trained on the train split and a small
  BERT (BertForSequenceClassification) trained from scratch on CPU, saved with
  ``save_pretrained`` (safetensors);
- ``bow_linear/linear_text_model.json``: tf-idf over unigrams and bigrams + logistic
  regression, exported without pickle;
- ``README.md``: the command, the test accuracy of each model and how often they disagree.

Both models are scored on the test split after being loaded back through their litdesk
plugins, so the figures are those of the files that ship. Seeds are fixed; on the same
machine and library versions a run reproduces the same weights.
"""

from __future__ import annotations

import argparse
import csv
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np

DEMO_DIR = Path(__file__).resolve().parent
SEED = 13
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB_SIZE = 4000
MAX_LENGTH = 128
BATCH_SIZE = 32
LEARNING_RATE = 1e-3
WARMUP_FRACTION = 0.1


def read_splits(csv_path: Path) -> tuple[list[dict], list[dict]]:
    """The train and test rows of the CSV (columns text, label, topic, split)."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    train = [row for row in rows if row["split"] == "train"]
    test = [row for row in rows if row["split"] == "test"]
    if not train or not test:
        sys.exit(f"{csv_path}: needs rows with split 'train' and rows with split 'test'")
    return train, test


def train_tokenizer(texts: list[str]):
    """A lowercase WordPiece tokenizer trained on ``texts``, wrapped as a BertTokenizerFast.

    The tokenizers trainer numbers the "##" continuation pieces in hash-map order and breaks
    ties between equally frequent merges by those numbers, so two runs can give different
    vocabularies (huggingface/tokenizers#1794). Registering every continuation piece up front,
    in sorted order, makes the run deterministic; the tokenizer is then rebuilt from the learnt
    vocabulary so that only the five BERT tokens are special.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    def new_wordpiece(vocab: dict[str, int] | None = None) -> Tokenizer:
        wordpiece = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
        wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
        wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        wordpiece.decoder = decoders.WordPiece()
        return wordpiece

    learner = new_wordpiece()
    continuations = sorted({f"##{char}" for text in texts
                            for word, _ in learner.pre_tokenizer.pre_tokenize_str(
                                learner.normalizer.normalize_str(text))
                            for char in word[1:]})
    learner.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS + continuations, show_progress=False))
    wordpiece = new_wordpiece(learner.get_vocab())
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[(token, wordpiece.token_to_id(token)) for token in ("[CLS]", "[SEP]")])
    return BertTokenizerFast(tokenizer_object=wordpiece, model_max_length=MAX_LENGTH,
                             unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")


def train_bert(tokenizer, train: list[dict], labels: list[str], epochs: int):
    """A 2-layer BERT classifier trained from scratch with AdamW and a linear warmup/decay."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=MAX_LENGTH, pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    model = BertForSequenceClassification(config)
    texts = [row["text"] for row in train]
    targets = torch.tensor([labels.index(row["label"]) for row in train])
    steps = epochs * -(-len(texts) // BATCH_SIZE)
    warmup = max(1, int(WARMUP_FRACTION * steps))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))))
    order_generator = torch.Generator().manual_seed(SEED)
    model.train()
    for epoch in range(1, epochs + 1):
        started, total_loss = time.perf_counter(), 0.0
        for batch in torch.randperm(len(texts), generator=order_generator).split(BATCH_SIZE):
            encoded = tokenizer([texts[i] for i in batch.tolist()], padding=True, truncation=True,
                                max_length=MAX_LENGTH, return_tensors="pt")
            loss = model(**encoded, labels=targets[batch]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += loss.item() * len(batch)
        print(f"  epoch {epoch}/{epochs}: loss {total_loss / len(texts):.4f} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
    return model.eval()


def train_linear(train: list[dict]):
    """tf-idf over unigrams and bigrams followed by logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform([row["text"] for row in train])
    classifier = LogisticRegression(C=10.0, max_iter=2000)
    classifier.fit(features, [row["label"] for row in train])
    return vectorizer, classifier


def predicted_labels(model, rows: list[dict]) -> list[str]:
    """The label a litdesk model predicts for each row."""
    vocab = model.output_spec()["probas"].vocab
    batch_size = model.max_minibatch_size()
    predictions = []
    for start in range(0, len(rows), batch_size):
        batch = [{"text": row["text"]} for row in rows[start:start + batch_size]]
        predictions += [vocab[int(np.argmax(out["probas"]))] for out in model.predict(batch)]
    return predictions


def folder_size(folder: Path) -> int:
    """Total bytes of the files under ``folder``."""
    return sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())


def write_readme(out: Path, command: str, figures: dict) -> None:
    """Record how the models were made and how well they do."""
    lines = [
        "# Demo models",
        "",
        "Made by `litdesk/resources/demo/train.py` (fixed seeds: a rerun on the same machine and library",
        "versions writes the same files); do not edit by hand. The command:",
        "",
        "```",
        command,
        "```",
        "",
        "| model | what | test accuracy | size | training time |",
        "|---|---|---|---|---|",
        f"| `bert_tiny/` | WordPiece tokenizer ({figures['vocab_size']} tokens) + BERT from scratch "
        f"({figures['bert_shape']}, {figures['bert_params']:,} parameters, {figures['epochs']} epochs) "
        f"| {figures['bert_accuracy']:.3f} | {figures['bert_bytes'] / 1e6:.2f} MB "
        f"| {figures['bert_seconds']:.0f} s |",
        f"| `bow_linear/` | tf-idf (1-2 grams, {figures['linear_terms']:,} terms) + logistic regression "
        f"| {figures['linear_accuracy']:.3f} | {figures['linear_bytes'] / 1e6:.2f} MB "
        f"| {figures['linear_seconds']:.1f} s |",
        "",
        f"Test split: {figures['test_rows']} rows (train: {figures['train_rows']}). "
        f"The two models disagree on {figures['disagreements']} test rows.",
        "",
    ]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEMO_DIR / "sentiment.csv", help="the demo CSV")
    parser.add_argument("--out", type=Path, default=DEMO_DIR / "models", help="where the models go")
    parser.add_argument("--epochs", type=int, default=10, help="BERT training epochs")
    args = parser.parse_args()

    import torch

    from litdesk_linear_text.model import export_sklearn
    from litdesk_linear_text.model import load as load_linear
    from litdesk.api import LoadOptions
    from litdesk_transformers.classifier import load as load_transformer

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)

    train, test = read_splits(args.data)
    labels = sorted({row["label"] for row in train})
    bert_dir, linear_dir = args.out / "bert_tiny", args.out / "bow_linear"
    for folder in (bert_dir, linear_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    print(f"BERT: {len(train)} training rows, labels {labels}", flush=True)
    started = time.perf_counter()
    tokenizer = train_tokenizer([row["text"] for row in train])
    model = train_bert(tokenizer, train, labels, args.epochs)
    bert_seconds = time.perf_counter() - started
    model.save_pretrained(bert_dir, safe_serialization=True)
    tokenizer.save_pretrained(bert_dir)

    started = time.perf_counter()
    vectorizer, classifier = train_linear(train)
    linear_seconds = time.perf_counter() - started
    export_sklearn(vectorizer, classifier, linear_dir)

    gold = [row["label"] for row in test]
    bert_predictions = predicted_labels(load_transformer(bert_dir, LoadOptions(device="cpu")), test)
    linear_predictions = predicted_labels(load_linear(linear_dir), test)
    figures = {
        "epochs": args.epochs,
        "vocab_size": len(tokenizer),
        "bert_shape": f"{model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}, "
                      f"{model.config.num_attention_heads} heads",
        "bert_params": sum(p.numel() for p in model.parameters()),
        "bert_accuracy": float(np.mean([p == g for p, g in zip(bert_predictions, gold)])),
        "linear_accuracy": float(np.mean([p == g for p, g in zip(linear_predictions, gold)])),
        "disagreements": sum(b != lin for b, lin in zip(bert_predictions, linear_predictions)),
        "bert_seconds": bert_seconds,
        "linear_seconds": linear_seconds,
        "bert_bytes": folder_size(bert_dir),
        "linear_bytes": folder_size(linear_dir),
        "linear_terms": len(vectorizer.vocabulary_),
        "train_rows": len(train),
        "test_rows": len(test),
    }
    print(f"bert_tiny  test accuracy {figures['bert_accuracy']:.3f} "
          f"({bert_seconds:.0f} s, {figures['bert_bytes'] / 1e6:.2f} MB)")
    print(f"bow_linear test accuracy {figures['linear_accuracy']:.3f} "
          f"({linear_seconds:.1f} s, {figures['linear_bytes'] / 1e6:.2f} MB)")
    print(f"disagreements on the test split: {figures['disagreements']} of {len(test)}")
    write_readme(args.out, shlex.join(["python", "litdesk/resources/demo/train.py", *sys.argv[1:]]), figures)


if __name__ == "__main__":
    main()
