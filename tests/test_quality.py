"""Data quality with injected faults whose answer is known: flipped labels, copies with tiny
noise, a far outlier, exact duplicates; and ``litdesk audit``."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from litdesk.api import Dataset, types
from litdesk.cli import main
from litdesk.core import cache as cache_module
from litdesk.core import paths
from litdesk.core import quality
from litdesk.core.cache import ResultCache
from litdesk.core.jobs import run_job
from litdesk.core.predict import Predictions

CLASSES = ["a", "b", "c"]
TOPICS = {"sport": "match goal team coach league striker referee stadium season player",
          "cooking": "oven recipe flour butter simmer garlic bake dough spice kitchen",
          "space": "orbit rocket planet galaxy astronaut telescope comet lunar launch star"}
FILLER = "the a of and to in with for on it this that".split()


def tabular(n=600, flips=30, seed=0):
    """Three well separated Gaussian classes in five numbers, ``flips`` labels flipped."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, 5))
    truth = rng.integers(0, 3, n)
    features = centres[truth] + rng.normal(0, 1, (n, 5))
    labels = truth.copy()
    flipped = np.sort(rng.choice(n, flips, replace=False))
    labels[flipped] = (truth[flipped] + rng.integers(1, 3, flips)) % 3
    table = pa.table({**{f"x{i}": features[:, i] for i in range(5)},
                      "label": [CLASSES[c] for c in labels]})
    spec = {**{f"x{i}": types.Scalar() for i in range(5)},
            "label": types.CategoryLabel(vocab=CLASSES)}
    return Dataset(table, spec, "tabular"), flipped, truth


def topic_texts(n=450, flips=25, seed=1):
    """Sentences about three topics labelled with their topic, ``flips`` labels flipped."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    truth = rng.integers(0, 3, n)
    texts = []
    for topic in truth:
        words = list(rng.choice(TOPICS[names[topic]].split(), 5)) + list(rng.choice(FILLER, 5))
        rng.shuffle(words)
        texts.append(" ".join(words))
    labels = truth.copy()
    flipped = np.sort(rng.choice(n, flips, replace=False))
    labels[flipped] = (truth[flipped] + rng.integers(1, 3, flips)) % 3
    table = pa.table({"text": texts, "topic": [names[c] for c in labels]})
    spec = {"text": types.TextSegment(), "topic": types.CategoryLabel(vocab=names)}
    return Dataset(table, spec, "topics"), flipped


def recall_precision(found, truth) -> tuple[float, float]:
    hits = len(set(found.tolist()) & set(truth.tolist()))
    return hits / len(truth), hits / max(1, len(found))


def test_flipped_tabular_labels_are_found_by_a_cross_validated_baseline():
    dataset, flipped, truth = tabular()
    audit = run_job(quality.audit_job(dataset, "label"))
    recall, precision = recall_precision(audit.label_issue_rows(), flipped)
    print(f"tabular: recall {recall:.2f}, precision {precision:.2f}")  # 0.90 and 0.93 seen
    assert recall >= 0.8 and precision >= 0.8
    labels = audit.labels
    assert "cross-validated" in labels.source
    # the suggested label of a flipped row is mostly its true class
    assert (labels.suggested[flipped] == truth[flipped]).mean() >= 0.8
    # worst first: quality rises along the list
    assert np.all(np.diff(labels.quality[audit.label_issue_rows()]) >= 0)
    assert labels.quality[flipped].mean() < labels.quality[np.setdiff1d(
        np.arange(len(dataset)), flipped)].mean()


def test_flipped_text_labels_are_found():
    dataset, flipped = topic_texts()
    audit = run_job(quality.audit_job(dataset, "topic"))
    recall, precision = recall_precision(audit.label_issue_rows(), flipped)
    print(f"text: recall {recall:.2f}, precision {precision:.2f}")
    assert recall >= 0.8 and precision >= 0.7


def test_a_models_probabilities_are_used_instead_of_a_baseline():
    dataset, flipped, truth = tabular(n=200, flips=10)
    probabilities = np.full((200, 3), 0.05)
    probabilities[np.arange(200), truth] = 0.9
    predictions = {"oracle": Predictions("oracle", dataset.name, {"probas": probabilities},
                                         {"probas": types.MulticlassPreds(vocab=CLASSES)})}
    audit = run_job(quality.audit_job(dataset, "label", predictions=predictions))
    assert audit.labels.source == "predictions of oracle"
    assert np.array_equal(np.sort(audit.label_issue_rows()), flipped)
    assert np.allclose(audit.labels.quality[flipped], 0.05)


def test_ambiguous_rows_have_close_top_classes():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.48, 0.47, 0.05], [0.5, 0.3, 0.2],
                              [0.34, 0.335, 0.325]])
    issues = quality.find_label_issues(np.array([0, 0, 0, 1]), probabilities, CLASSES, "test")
    audit = quality.Audit(4, "", np.zeros(4, np.float32), np.zeros(4, np.int64),
                          np.ones(4, np.float32), np.full(4, -1), np.full(4, -1), issues)
    assert audit.ambiguous_rows().tolist() == [3, 1]


def test_copies_with_tiny_noise_point_to_their_originals_and_a_far_outlier_ranks_first():
    rng = np.random.default_rng(2)
    clusters = rng.normal(0, 10, (4, 48))
    vectors = clusters[rng.integers(0, 4, 500)] + rng.normal(0, 1, (500, 48))
    originals = np.array([3, 50, 120, 333])
    copies = np.arange(500, 504)
    noisy = vectors[originals] + rng.normal(0, 1e-3, (4, 48))
    far = np.full((1, 48), 200.0)
    matrix = np.vstack([vectors, noisy, far]).astype(np.float32)  # 48 wide: PCA first
    score, nearest, distance, twin = run_job(quality.neighbours_job(matrix))
    assert np.array_equal(twin[copies], originals)
    assert np.array_equal(twin[originals], copies)
    assert set(np.flatnonzero(twin != quality.NO_ROW)) == set(originals) | set(copies)
    assert int(np.argmax(score)) == 504
    assert np.allclose(distance[copies], np.linalg.norm(noisy - vectors[originals], axis=1),
                       rtol=1e-3)


def test_an_outlier_far_from_every_cluster_is_ranked_first_in_the_audit():
    dataset, _, _ = tabular(n=300, flips=0)
    table = dataset.table
    far = {name: [40.0] for name in table.column_names if name != "label"}
    table = pa.concat_tables([table, pa.table({**far, "label": ["a"]})])
    audit = run_job(quality.audit_job(Dataset(table, dataset.spec(), "t"), "label"))
    assert audit.outlier_rows()[0] == 300


def test_exact_duplicates_compare_normalised_text():
    table = pa.table({"text": ["Good  movie", "bad", "good movie ", "GOOD MOVIE", "other"],
                      "n": [1, 2, 1, 1, 1]})
    dataset = Dataset(table, {"text": types.TextSegment(), "n": types.Scalar()}, "d")
    twins = quality.exact_duplicates(dataset, ["text", "n"])
    assert twins.tolist() == [2, -1, 0, 0, -1]


def test_the_audit_is_cached_as_a_memory_mapped_column_file(tmp_path, monkeypatch):
    """A large audit (here every one) is a column file, read back without a copy in memory."""
    monkeypatch.setattr(cache_module, "_FILE_BYTES", 0)
    dataset, _, _ = tabular(n=200, flips=5)
    cache = ResultCache(tmp_path)
    first = run_job(quality.audit_job(dataset, "label", cache=cache))
    assert len(list((tmp_path / cache_module.COLUMNS_FOLDER).glob("*.arrow"))) == 1
    messages = []
    second = run_job(quality.audit_job(dataset, "label", cache=cache),
                     lambda step: messages.append(step.message))
    assert "Audit: from the cache" in messages
    assert not second.outlier_score.flags.writeable  # a view of the mapped file
    assert_same_audit(second, first)


def test_audit_command_writes_one_row_per_data_row(tmp_path, capsys):
    dataset, flipped, _ = tabular(n=300, flips=15)
    table = dataset.table
    table = pa.concat_tables([table, table.slice(7, 1)])  # row 300 repeats row 7
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    out = tmp_path / "audit.parquet"
    assert main(["audit", "--data", str(path), "--label", "label", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "301 rows" in line and "possible label errors" in line
    result = pq.read_table(out)
    assert result.column_names == ["label_issue", "label_quality", "suggested_label",
                                   "outlier_score", "near_duplicate_of"]
    assert result.num_rows == 301
    issues = np.flatnonzero(result.column("label_issue").to_numpy(zero_copy_only=False))
    assert recall_precision(issues, flipped)[0] >= 0.7
    twins = result.column("near_duplicate_of").to_pylist()
    assert twins[300] == 7 and twins[7] == 300 and twins[0] is None
    quality_scores = result.column("label_quality").to_numpy()
    assert ((quality_scores >= 0) & (quality_scores <= 1)).all()


@pytest.mark.parametrize("args, message", [
    (["--label", "nope"], "no column named 'nope'"),
    (["--label", "label", "--folds", "1"], "--folds"),
])
def test_audit_command_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    dataset, _, _ = tabular(n=50, flips=0)
    path = tmp_path / "data.parquet"
    pq.write_table(dataset.table, path)
    try:
        code = main(["audit", "--data", str(path), "--out", str(tmp_path / "o.parquet"), *args])
    except SystemExit as exit:  # argument mistakes, as every command
        code = exit.code
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error and message in error


def test_audit_command_refuses_an_output_that_is_not_parquet(tmp_path, capsys):
    dataset, _, _ = tabular(n=50, flips=0)
    path = tmp_path / "data.parquet"
    pq.write_table(dataset.table, path)
    assert main(["audit", "--data", str(path), "--label", "label", "--out",
                 str(tmp_path / "o.csv")]) == 2
    assert "must be a .parquet file" in capsys.readouterr().err


def test_an_accepted_label_is_journaled_and_survives_reopening(tmp_path):
    from litdesk.core.datapoints import NewDatapoint
    from litdesk.core.jobs import InlineRunner
    from litdesk.core.workbench import Workbench

    path = tmp_path / "reviews.csv"
    path.write_text("text,label\ngood film,negative\nbad plot,negative\ngreat cast,positive\n",
                    encoding="utf-8")
    first = Workbench(InlineRunner())
    first.open_paths([path])
    changed = []
    first.session.values_changed.connect(changed.append)
    assert first.add_datapoints([NewDatapoint.now({"text": "fine", "label": "positive"}, 0,
                                                  "edited")])
    assert first.fix_values("label", [0, 3], ["positive", "negative"])
    assert changed == ["label"]
    assert first.session.dataset.table.column("label").to_pylist() == [
        "positive", "negative", "positive", "negative"]
    assert not first.fix_values("no_such_column", [0], ["x"])  # told, not raised
    assert "no_such_column" in first.errors[-1]

    reopened = Workbench(InlineRunner())  # the journal brings the datapoint and the fixes back
    reopened.open_paths([path])
    assert reopened.session.dataset.table.column("label").to_pylist() == [
        "positive", "negative", "positive", "negative"]
    assert reopened.session.dataset.table.column("text").to_pylist()[-1] == "fine"
    assert not [error for error in reopened.errors if "journal" in error.lower()]


@pytest.mark.slow
def test_audit_command_uses_a_models_predictions(tmp_path, capsys):
    from litdesk.core import paths

    model = paths.DEMO_MODELS[1]  # the bag-of-words linear model (JSON: no trust needed)
    out = tmp_path / "audit.parquet"
    assert main(["audit", "--data", str(paths.DEMO_DATASET), "--label", "label",
                 "--model", str(model), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "1,418 rows" in line and "(predictions of " in line, line
    result = pq.read_table(out)
    assert result.num_rows == 1418
    suggested = set(result.column("suggested_label").to_pylist())
    assert suggested <= {"negative", "positive"}


def test_near_twins_an_approximate_search_misses_are_found_on_a_grid():
    rng = np.random.default_rng(4)
    vectors = rng.normal(0, 1, (400, 8)).astype(np.float32)
    nearest = np.full(400, -1, np.int64)
    distance = np.full(400, np.inf, np.float32)
    twin = np.full(400, quality.NO_ROW, np.int64)
    vectors[7] = vectors[300] + 1e-5
    vectors[9] = vectors[10] + 2e-5
    twin[9], twin[10] = 10, 9  # found by the search already
    quality._grid_twins(vectors, vectors, 0.01, twin, nearest, distance)
    assert twin[7] == 300 and twin[300] == 7 and twin[9] == 10
    assert (twin != quality.NO_ROW).sum() == 4


def assert_same_audit(shown: quality.Audit, expected: quality.Audit) -> None:
    for name in ("outlier_score", "nearest", "nearest_distance", "near_duplicate_of",
                 "exact_duplicate_of"):
        np.testing.assert_array_equal(getattr(shown, name), getattr(expected, name), name)
    for name in ("given", "is_issue", "quality", "suggested", "margin"):
        np.testing.assert_array_equal(getattr(shown.labels, name),
                                      getattr(expected.labels, name), name)
    assert (shown.space, shown.labels.classes, shown.labels.source, shown.summary()) == (
        expected.space, expected.labels.classes, expected.labels.source, expected.summary())


def test_in_a_child_process_a_models_probabilities_and_embeddings_give_the_same_audit(
        child_processes):
    """The probabilities and embeddings travel as .npy files, the result back as the cache
    stores it; the audit is the in-process one."""
    dataset, _, truth = tabular(n=200, flips=10)
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet(np.ones(3), 200) * 0.3
    probabilities[np.arange(200), truth] += 0.7
    embeddings = rng.normal(size=(200, 40)).astype(np.float32)  # wider than KNN_FEATURES
    predictions = {"oracle": Predictions(
        "oracle", dataset.name, {"probas": probabilities, "emb": embeddings},
        {"probas": types.MulticlassPreds(vocab=CLASSES), "emb": types.Embeddings()})}
    messages = []
    there = run_job(quality.audit_job(dataset, "label", predictions=predictions,
                                      in_child_process=True),
                    lambda step: messages.append(step.message))
    assert len(child_processes) == 1 and child_processes[0].returncode == 0
    assert "Nearest neighbours" in messages  # the child's progress, relayed
    here = run_job(quality.audit_job(dataset, "label", predictions=predictions))
    assert there.labels.source == "predictions of oracle" and there.space == "oracle emb"
    assert_same_audit(there, here)


def test_a_child_audit_goes_to_the_cache_and_is_read_from_there_without_a_copy(
        child_processes, tmp_path, monkeypatch, litdesk_home):
    """The child's result file is stored in the cache as it is mapped, and the audit the job
    returns maps the cache's file: no copy of a million rows' arrays in the window's memory."""
    monkeypatch.setattr(cache_module, "_FILE_BYTES", 0)
    dataset, _, _ = tabular(n=200, flips=5)
    cache = ResultCache(tmp_path)
    there = run_job(quality.audit_job(dataset, "label", cache=cache, in_child_process=True))
    assert len(child_processes) == 1
    assert not there.outlier_score.flags.writeable and not there.labels.given.flags.writeable
    assert len(list((tmp_path / cache_module.COLUMNS_FOLDER).glob("*.arrow"))) == 1
    assert not list(paths.cache_dir().glob("audit-*"))  # the child's folder is gone
    assert_same_audit(there, run_job(quality.audit_job(dataset, "label")))
    again = run_job(quality.audit_job(dataset, "label", cache=cache, in_child_process=True))
    assert len(child_processes) == 1  # from the cache: no second child
    assert_same_audit(again, there)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for the app")
def test_a_frozen_app_runs_the_audit_child_as_itself(frozen_app, child_processes):
    """A frozen app has no Python to run ``-c``: the child is the app with --audit-child,
    which litdesk.__main__ turns into the child's work (here a script plays the app)."""
    import litdesk.__main__

    assert litdesk.__main__.AUDIT_CHILD_FLAG == quality.CHILD_FLAG
    dataset, _, _ = tabular(n=150, flips=8)
    there = run_job(quality.audit_job(dataset, "label", in_child_process=True))
    assert child_processes[0].args == [str(frozen_app), quality.CHILD_FLAG,
                                       child_processes[0].args[-1]]
    assert_same_audit(there, run_job(quality.audit_job(dataset, "label")))
