"""Fine-tuning a tiny BERT (tests/tiny_bert.py) with the transformers Trainer."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from litdesk.core.jobs import run_job  # noqa: E402
from tests.helpers import toy_sentiment as toy_task  # noqa: E402
from litdesk.core.training import (  # noqa: E402
    FineTuneSettings,
    TrainingProgress,
    fine_tune_job,
    split_validation,
)

pytestmark = pytest.mark.slow

#: Learns toy_task(384) in about 2 epochs of 6 (a random tiny BERT sits on a plateau first).
FAST = FineTuneSettings(epochs=6, batch_size=16, learning_rate=1e-2, seed=0,
                        validation_share=0.25, patience=0, threads=1)


def reloaded_accuracy(folder, texts, labels):
    from litdesk.core.model_loading import load_model

    model = load_model(folder)
    outputs = model.predict([{"text": text} for text in texts])
    vocab = model.output_spec()["probas"].vocab
    predicted = [vocab[int(np.argmax(output["probas"]))] for output in outputs]
    return float(np.mean([p == g for p, g in zip(predicted, labels)])), outputs


def test_fine_tuning_learns_a_new_task_and_saves_what_it_learnt(model_dir, tmp_path):
    texts, labels = toy_task(384)
    reports = []
    result = run_job(fine_tune_job(model_dir, texts, labels, tmp_path / "tuned", FAST,
                                   rows=np.arange(len(texts)) + 10), reports.append)
    assert result.status == "finished" and not result.new_head  # its labels include ours
    assert result.labels == ["negative", "neutral", "positive"]
    losses = [r.loss for r in reports if isinstance(r, TrainingProgress) and r.loss is not None]
    assert len(losses) >= 3 and np.mean(losses[-2:]) < losses[0]
    epochs = result.epochs
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert epochs[-1]["validation_accuracy"] >= 0.95 > epochs[0]["validation_accuracy"]
    assert epochs[-1]["validation_loss"] < epochs[0]["validation_loss"] / 2
    # held out: the validation rows, read back from the saved folder
    _, validation = split_validation(labels, FAST.validation_share, FAST.seed)
    best = next(e for e in epochs if e["epoch"] == result.best_epoch)
    gold = [labels[i] for i in validation]
    accuracy, outputs = reloaded_accuracy(result.folder, [texts[i] for i in validation], gold)
    assert accuracy == pytest.approx(best["validation_accuracy"])
    # the reloaded checkpoint predicts as the trained model did: the same validation loss
    vocab = list(result.labels)
    loss = -np.mean([np.log(output["probas"][vocab.index(g)]) for output, g in zip(outputs, gold)])
    assert loss == pytest.approx(best["validation_loss"], abs=1e-4)
    record = json.loads((result.folder / "training_record.json").read_text())
    assert record["kind"] == "fine-tune" and record["base_model"] == str(model_dir)
    assert record["seed"] == 0 and record["parameters"]["learning_rate"] == 1e-2
    assert record["data"]["rows"]["range"] == f"10:{10 + len(texts)}"
    assert record["result"]["status"] == "finished"
    assert record["result"]["validation_positions"] == validation.tolist()
    assert [e["epoch"] for e in record["epochs"]] == [1, 2, 3, 4, 5, 6]
    assert (result.folder / "model.safetensors").is_file()
    assert not any(p.suffix in (".bin", ".pt", ".pth") for p in result.folder.rglob("*"))


def test_the_same_seed_trains_the_same_model(model_dir, tmp_path):
    texts, labels = toy_task(64)
    settings = FineTuneSettings(epochs=1, batch_size=16, learning_rate=3e-3, validation_share=0.25,
                                threads=1)
    first = run_job(fine_tune_job(model_dir, texts, labels, tmp_path / "a", settings))
    second = run_job(fine_tune_job(model_dir, texts, labels, tmp_path / "b", settings))
    _, one = reloaded_accuracy(first.folder, texts[:8], labels[:8])
    _, two = reloaded_accuracy(second.folder, texts[:8], labels[:8])
    np.testing.assert_allclose([o["probas"] for o in one], [o["probas"] for o in two], atol=1e-5)


def test_cancel_keeps_the_last_good_checkpoint(model_dir, tmp_path):
    texts, labels = toy_task(128)
    cancel = threading.Event()
    settings = FineTuneSettings(epochs=50, batch_size=16, learning_rate=3e-3, validation_share=0.25,
                                patience=0, threads=1)
    job = fine_tune_job(model_dir, texts, labels, tmp_path / "tuned", settings, cancel=cancel)

    def on_progress(report):
        if isinstance(report, TrainingProgress) and report.validation is not None:
            cancel.set()  # after the first epoch's checkpoint

    result = run_job(job, on_progress)
    assert result.status == "cancelled" and result.best_epoch == 1
    assert 1 <= len(result.epochs) <= 2
    record = json.loads((tmp_path / "tuned" / "training_record.json").read_text())
    assert record["result"]["status"] == "cancelled"
    accuracy, _ = reloaded_accuracy(result.folder, texts[:4], labels[:4])  # it loads and runs
    assert 0 <= accuracy <= 1


def test_the_same_labels_keep_the_head_and_new_ones_get_a_new_head(model_dir, tmp_path):
    texts, labels = toy_task(48, names=("negative", "positive"))
    settings = FineTuneSettings(epochs=1, batch_size=16, learning_rate=1e-3, validation_share=0,
                                threads=1)
    kept = run_job(fine_tune_job(model_dir, texts, labels, tmp_path / "kept", settings))
    assert not kept.new_head and kept.labels == ["negative", "neutral", "positive"]
    texts, labels = toy_task(48, names=("blame", "praise"))
    renamed = run_job(fine_tune_job(model_dir, texts, labels, tmp_path / "renamed", settings))
    assert renamed.new_head and renamed.labels == ["blame", "praise"]
    config = json.loads((tmp_path / "renamed" / "config.json").read_text())
    assert config["id2label"] == {"0": "blame", "1": "praise"}


@pytest.mark.parametrize("settings, message", [
    (FineTuneSettings(epochs=0), "epochs"),
    (FineTuneSettings(learning_rate=-1.0), "learning rate"),
    (FineTuneSettings(validation_share=1.0), "validation share"),
])
def test_bad_settings_say_which(model_dir, tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        run_job(fine_tune_job(model_dir, ["a"], ["b"], tmp_path / "out", settings))


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not a Hugging Face model folder"):
        run_job(fine_tune_job(tmp_path, ["a"], ["b"], tmp_path / "out"))


def test_fine_tuning_trains_as_a_plain_torch_loop_does(model_dir, tmp_path):
    """litdesk's Trainer setup adds nothing a plain loop lacks (weight decay, warmup, another
    schedule or optimizer, clipping, head or label order): the loop of benchmarks/train.py,
    which shuffles the rows as the Trainer does, ends at the same weights. Dropout is off, so
    only the setup can differ."""
    import transformers
    from safetensors.numpy import load_file

    from benchmarks.train import plain_loop

    base = tmp_path / "base"  # two labels without dropout; the task's two new ones: a new head
    transformers.BertForSequenceClassification.from_pretrained(
        model_dir, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1}, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, ignore_mismatched_sizes=True).save_pretrained(base)
    transformers.AutoTokenizer.from_pretrained(model_dir).save_pretrained(base)
    texts, labels = toy_task(40, names=("blame", "praise"))
    settings = FineTuneSettings(epochs=2, batch_size=8, learning_rate=3e-3, seed=3,
                                validation_share=0, patience=0, threads=1)
    result = run_job(fine_tune_job(base, texts, labels, tmp_path / "trainer", settings))
    assert result.new_head and result.labels == ["blame", "praise"]
    plain_loop(base, texts, labels, tmp_path / "plain", 2, 8, 3e-3, 3, "cpu")
    trained, plain, before = (load_file(folder / "model.safetensors")
                              for folder in (result.folder, tmp_path / "plain", base))
    assert trained.keys() == plain.keys()
    for name, weights in trained.items():
        np.testing.assert_allclose(weights, plain[name], atol=1e-6, err_msg=name)
    moved = "bert.encoder.layer.0.attention.self.query.weight"
    assert np.abs(trained[moved] - before[moved]).max() > 1e-3  # training changed the encoder
