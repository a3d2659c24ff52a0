"""Fine-tuning a Hugging Face sequence classifier (a local ``save_pretrained`` folder) on rows
of a dataset, with the transformers ``Trainer``.

:func:`fine_tune_job` is a job: it runs the Trainer on a thread of its own and yields
:class:`TrainingProgress` (training loss as it is logged, validation metrics at each epoch's
end) until the Trainer is done. Setting ``cancel`` stops training at the next step; the best
checkpoint saved so far stays. After each epoch the model is evaluated on a seeded validation
share; the best one is written with ``save_pretrained`` (safetensors) to the output folder with
its tokenizer and a training record, and training stops early after ``patience`` epochs
without improvement. A label set that differs from the model's gets a new classification head.
On a GPU it trains in bf16 where the card supports it. torch and transformers are imported on
the training thread only.
"""

from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from litdesk.core.jobs import Job, Progress
from litdesk.core.training_record import make_record, write_record

#: Seconds between two step reports (the loss is reported whenever the Trainer logs it).
_REPORT_EVERY_S = 0.1


@dataclass(frozen=True)
class FineTuneSettings:
    """What :func:`fine_tune_job` trains with. ``patience`` 0 never stops early;
    ``validation_share`` 0 trains on every row (no validation, no early stopping)."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    seed: int = 0
    validation_share: float = 0.1
    patience: int = 2
    max_length: int = 128
    weight_decay: float = 0.0
    device: Optional[str] = None  # None or "auto": the GPU when there is one
    #: CPU threads torch may use while training (None: torch's choice); fewer than the cores
    #: trains faster beside other busy processes, whose threads torch's would fight.
    threads: Optional[int] = None

    def check(self) -> None:
        """ValueError naming the first setting out of range."""
        if not 1 <= self.epochs <= 1000:
            raise ValueError(f"epochs is {self.epochs}; expected 1 to 1000")
        if not 1 <= self.batch_size <= 65536:
            raise ValueError(f"batch size is {self.batch_size}; expected 1 to 65536")
        if not (math.isfinite(self.learning_rate) and 0 < self.learning_rate < 1):
            raise ValueError(f"learning rate is {self.learning_rate}; expected between 0 and 1")
        if not 0 <= self.validation_share < 1:
            raise ValueError(f"validation share is {self.validation_share}; expected 0 to <1")
        if self.patience < 0 or self.max_length < 2:
            raise ValueError("patience must be 0 or more and max length at least 2")


@dataclass(frozen=True)
class TrainingProgress(Progress):
    """A step report: ``done`` of ``total`` optimizer steps, the epoch reached, and the training
    loss just logged or the validation metrics of the epoch just ended, when there are."""

    epoch: float = 0.0
    loss: Optional[float] = None
    validation: Optional[dict] = None


@dataclass
class FineTuneResult:
    """What training left: the folder of the best checkpoint (None when no epoch ended), the
    metrics per epoch, and how it ended (``finished``, ``stopped early`` or ``cancelled``)."""

    folder: Optional[Path]
    epochs: list[dict]
    status: str
    labels: list[str]
    best_epoch: Optional[int]
    new_head: bool
    record: dict = field(default_factory=dict)

    @property
    def summary(self) -> str:
        best = next((e for e in self.epochs if e["epoch"] == self.best_epoch), None)
        metric = (f", validation accuracy {best['validation_accuracy']:.1%} at epoch "
                  f"{self.best_epoch}" if best and best.get("validation_accuracy") is not None
                  else "")
        where = f"saved to {self.folder}" if self.folder else "nothing saved (no epoch ended)"
        return f"fine-tuning {self.status} after {len(self.epochs)} epoch(s){metric}; {where}"


def split_validation(labels: Sequence[str], share: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and validation rows: a seeded share, stratified by label when
    every label has two rows or more."""
    n = len(labels)
    everything = np.arange(n)
    if share <= 0:
        return everything, np.zeros(0, dtype=np.int64)
    n_validation = max(1, int(round(n * share)))
    if n - n_validation < 1:
        raise ValueError(f"{n} row(s) leave none to train on after a {share:.0%} validation share")
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    stratify = labels if counts.min() >= 2 and n_validation >= len(counts) else None
    train, validation = train_test_split(everything, test_size=n_validation, random_state=seed,
                                         stratify=stratify)
    return np.sort(train), np.sort(validation)


def _device(torch: Any, requested: Optional[str]) -> str:
    if requested in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _generic_labels(labels: list[str]) -> bool:
    return all(label == f"LABEL_{i}" for i, label in enumerate(labels))


def _reset_head(model: Any) -> None:
    """Initialise afresh the modules outside the backbone: the classification head."""
    import torch

    backbone = set(id(module) for module in model.base_model.modules())
    std = getattr(model.config, "initializer_range", 0.02)
    for module in model.modules():
        if id(module) in backbone or not isinstance(module, torch.nn.Linear):
            continue
        torch.nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)


class _Encoded:
    """A tokenised text dataset for the Trainer (torch's map-style dataset protocol)."""

    def __init__(self, encodings: dict, targets: np.ndarray) -> None:
        self.encodings, self.targets = encodings, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> dict:
        item = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = int(self.targets[index])
        return item


def fine_tune_job(base: "Path | str", texts: Sequence[str], labels: Sequence[str],
                  out: "Path | str", settings: FineTuneSettings = FineTuneSettings(), *,
                  cancel: Optional[threading.Event] = None, text_pairs: Optional[Sequence[str]] = None,
                  data_path: Optional[Path] = None, data_sha256: Optional[str] = None,
                  rows: Optional[np.ndarray] = None, text_column: str = "text",
                  label_column: str = "label") -> Job[FineTuneResult]:
    """Fine-tune the classifier saved in ``base`` on ``texts`` (and ``text_pairs``) with gold
    ``labels``, writing the best checkpoint to ``out``. ``rows`` are the dataset positions the
    texts came from, for the training record. Bad input: ValueError before training starts."""
    settings.check()
    base, out = Path(base), Path(out)
    texts = ["" if text is None else str(text) for text in texts]
    labels = [str(label) for label in labels]
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"{len(texts)} text(s) and {len(labels)} label(s); expected as many, "
                         "at least one")
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError("the second texts are not as many as the first")
    if not (base / "config.json").is_file():
        raise ValueError(f"{base}: not a Hugging Face model folder (no config.json)")
    if out.resolve() == base.resolve():
        raise ValueError(f"{out}: the output folder is the base model's own folder")
    rows = np.arange(len(texts)) if rows is None else np.asarray(rows, dtype=np.int64)
    train_at, validation_at = split_validation(labels, settings.validation_share, settings.seed)
    cancel = cancel or threading.Event()
    reports: "queue.Queue[Any]" = queue.Queue()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = _train(base, texts, text_pairs, labels, out, settings, cancel,
                                       reports, train_at, validation_at, rows, data_path,
                                       data_sha256, text_column, label_column)
        except BaseException as error:  # re-raised on the job's thread
            outcome["error"] = error
        finally:
            reports.put(None)

    thread = threading.Thread(target=run, name="litdesk-fine-tune", daemon=True)
    yield Progress(0, 0, f"Fine-tuning {base.name}: loading")
    thread.start()
    try:
        while True:
            report = reports.get()
            if report is None:
                break
            yield report
    finally:  # a job closed half-way (its runner cancelled) stops the Trainer too
        cancel.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _train(base: Path, texts: list[str], text_pairs: Optional[Sequence[str]], labels: list[str],
           out: Path, settings: FineTuneSettings, cancel: threading.Event, reports: queue.Queue,
           train_at: np.ndarray, validation_at: np.ndarray, rows: np.ndarray,
           data_path: Optional[Path], data_sha256: Optional[str], text_column: str,
           label_column: str) -> FineTuneResult:
    os.environ["USE_HUB_KERNELS"] = "NO"  # code fetched from the Hub, never run here
    import torch
    import transformers
    from transformers import (AutoConfig, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainerCallback,
                              TrainingArguments)

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    transformers.set_seed(settings.seed)
    local = {"local_files_only": True, "trust_remote_code": False}
    config = AutoConfig.from_pretrained(base, **local)
    if getattr(config, "auto_map", None):
        raise ValueError(f"{base}: its config names custom code (auto_map), which litdesk never runs")
    old_labels = [str(config.id2label[i]) for i in range(config.num_labels)]
    new_head = _generic_labels(old_labels) or not set(labels) <= set(old_labels)
    model_labels = sorted(set(labels)) if new_head else old_labels
    if new_head:
        config.num_labels = len(model_labels)
        config.id2label = dict(enumerate(model_labels))
        config.label2id = {label: i for i, label in enumerate(model_labels)}
        config.problem_type = "single_label_classification"
    tokenizer = AutoTokenizer.from_pretrained(base, **local)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, config=config, use_safetensors=True, ignore_mismatched_sizes=True, **local)
    if new_head and len(old_labels) == len(model_labels):  # same shape: the old head would stay
        _reset_head(model)
    index = {label: i for i, label in enumerate(model_labels)}
    targets = np.array([index[label] for label in labels], dtype=np.int64)
    max_length = min(settings.max_length, tokenizer.model_max_length or settings.max_length)
    encodings = tokenizer(texts, list(text_pairs) if text_pairs is not None else None,
                          truncation=True, max_length=max_length)

    def subset(at: np.ndarray) -> _Encoded:
        return _Encoded({key: [values[i] for i in at] for key, values in encodings.items()},
                        targets[at])

    train_set, validation_set = subset(train_at), subset(validation_at)
    device = _device(torch, settings.device)
    on_gpu = device.startswith("cuda")
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    validating = len(validation_set) > 0
    scratch = out.parent / f".{out.name}.trainer"
    arguments = TrainingArguments(
        output_dir=str(scratch), num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=max(settings.batch_size, 64),
        learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
        seed=settings.seed, data_seed=settings.seed,
        eval_strategy="epoch" if validating else "no", save_strategy="no",
        logging_strategy="steps", logging_steps=max(1, steps_per_epoch // 10),
        report_to=[], disable_tqdm=True, bf16=bf16, use_cpu=not on_gpu,
        dataloader_num_workers=0)

    def accuracy(prediction: Any) -> dict:
        logits, gold = prediction
        return {"accuracy": float((np.asarray(logits).argmax(axis=-1) == gold).mean())}

    epochs: list[dict] = []
    state = {"best": None, "best_epoch": None, "waited": 0, "stopped_early": False,
             "epoch_losses": [], "last_report": 0.0}
    parameters = {"epochs": settings.epochs, "batch_size": settings.batch_size,
                  "learning_rate": settings.learning_rate, "weight_decay": settings.weight_decay,
                  "validation_share": settings.validation_share, "patience": settings.patience,
                  "max_length": max_length, "device": device, "bf16": bf16,
                  "new_head": new_head, "trainer": f"transformers {transformers.__version__}",
                  "torch": torch.__version__}

    def record(status: str) -> dict:
        return make_record(
            kind="fine-tune", base=str(base), data_path=data_path, data_sha256=data_sha256,
            label_column=label_column, input_columns=[text_column], rows=rows,
            labels=model_labels, parameters=parameters, seed=settings.seed, epochs=epochs,
            result={"status": status, "best_epoch": state["best_epoch"],
                    "training_rows": len(train_at), "validation_rows": len(validation_at),
                    "validation_positions": validation_at.tolist()
                    if len(validation_at) <= 10_000 else None})

    def save() -> None:
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        write_record(out, record("in progress"))

    class Reporter(TrainerCallback):
        def on_step_end(self, args, trainer_state, control, **kwargs):
            if cancel.is_set():
                control.should_training_stop = True
            now = time.monotonic()
            if now - state["last_report"] >= _REPORT_EVERY_S:
                state["last_report"] = now
                reports.put(TrainingProgress(trainer_state.global_step, trainer_state.max_steps,
                                             f"Fine-tuning: epoch {trainer_state.epoch:.2f}",
                                             epoch=float(trainer_state.epoch or 0)))
            return control

        def on_log(self, args, trainer_state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                state["epoch_losses"].append(float(logs["loss"]))
                reports.put(TrainingProgress(trainer_state.global_step, trainer_state.max_steps,
                                             f"Fine-tuning: loss {logs['loss']:.4f}",
                                             epoch=float(trainer_state.epoch or 0),
                                             loss=float(logs["loss"])))

        def _epoch_done(self, trainer_state, control, metrics: Optional[dict]) -> None:
            number = len(epochs) + 1
            losses = state["epoch_losses"]
            entry = {"epoch": number, "step": trainer_state.global_step,
                     "train_loss": float(np.mean(losses)) if losses else None}
            state["epoch_losses"] = []
            if metrics is not None:
                entry["validation_loss"] = float(metrics["eval_loss"])
                entry["validation_accuracy"] = float(metrics["eval_accuracy"])
            epochs.append(entry)
            score = entry.get("validation_accuracy")
            score_key = (score, -entry["validation_loss"]) if score is not None else (number,)
            if state["best"] is None or score_key > state["best"]:
                state["best"], state["best_epoch"], state["waited"] = score_key, number, 0
                save()
            else:
                state["waited"] += 1
                if settings.patience and metrics is not None and state["waited"] >= settings.patience:
                    state["stopped_early"] = True
                    control.should_training_stop = True
            reports.put(TrainingProgress(trainer_state.global_step, trainer_state.max_steps,
                                         f"Epoch {number}: " + ", ".join(
                                             f"{key} {value:.4f}" for key, value in entry.items()
                                             if isinstance(value, float)),
                                         epoch=float(number), validation=dict(entry)))

        def on_evaluate(self, args, trainer_state, control, metrics=None, **kwargs):
            self._epoch_done(trainer_state, control, metrics or {})

        def on_epoch_end(self, args, trainer_state, control, **kwargs):
            if cancel.is_set():  # a cut epoch is neither evaluated nor kept
                control.should_evaluate = False
            elif not validating:
                self._epoch_done(trainer_state, control, None)

    trainer = Trainer(model=model, args=arguments, train_dataset=train_set,
                      eval_dataset=validation_set if validating else None,
                      data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=accuracy, callbacks=[Reporter()])
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    threads = torch.get_num_threads()
    if settings.threads and not on_gpu:
        torch.set_num_threads(settings.threads)
    try:
        trainer.train()
    finally:
        import shutil

        torch.set_num_threads(threads)
        shutil.rmtree(scratch, ignore_errors=True)
    status = ("cancelled" if cancel.is_set() else
              "stopped early" if state["stopped_early"] else "finished")
    folder = out if state["best_epoch"] is not None else None
    final = record(status)
    if folder is not None:
        write_record(folder, final)
    return FineTuneResult(folder, epochs, status, model_labels, state["best_epoch"], new_head,
                          final)
