"""Clusters of a projection and their names: three clear topics are named by their words."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from litdesk.api import CategoryLabel, Dataset, MulticlassPreds, Scalar, TextSegment
from litdesk.core import clusters
from litdesk.core.jobs import run_job
from litdesk.core.outcomes import compute_outcomes
from litdesk.core.predict import Predictions

TOPICS = {"sport": "match goal team coach league striker referee stadium",
          "cooking": "oven recipe flour butter simmer garlic dough spice",
          "space": "orbit rocket planet galaxy astronaut telescope comet lunar"}
FILLER = "the a of and to in with for on it this that very".split()


def topic_corpus(per_topic=60, seed=0):
    """Texts about three topics, their projected points in three blobs, and each row's topic."""
    rng = np.random.default_rng(seed)
    texts, topic, points = [], [], []
    for index, (name, words) in enumerate(TOPICS.items()):
        centre = np.array([np.cos(index * 2.1), np.sin(index * 2.1)]) * 10
        for _ in range(per_topic):
            chosen = list(rng.choice(words.split(), 4)) + list(rng.choice(FILLER, 6))
            rng.shuffle(chosen)
            texts.append(" ".join(chosen))
            topic.append(name)
            points.append(centre + rng.normal(0, 1, 2))
    table = pa.table({"text": texts, "topic": topic})
    dataset = Dataset(table, {"text": TextSegment(), "topic": CategoryLabel(vocab=list(TOPICS))},
                      "topics")
    return dataset, np.array(points, np.float32), np.array(topic)


def test_three_clear_topics_are_found_and_named_by_their_words():
    dataset, coords, topic = topic_corpus()
    found = run_job(clusters.cluster_job(coords))
    assert found.max() == 2  # three clusters
    for name in TOPICS:  # each topic lies in one cluster
        assert len(set(found[(topic == name) & (found != clusters.NOISE)].tolist())) == 1
    infos = clusters.describe_clusters(dataset, found)
    for info in infos:
        members = topic[found == info.cluster]
        majority = max(set(members.tolist()), key=members.tolist().count)
        assert len(info.words) == 3
        assert set(info.words) <= set(TOPICS[majority].split()), (majority, info.words)


def test_labels_carry_the_majority_gold_label_and_each_models_accuracy():
    dataset, coords, topic = topic_corpus(per_topic=40)
    probabilities = np.full((len(topic), 3), 0.1)
    names = list(TOPICS)
    predicted = np.array([names.index(t) for t in topic])
    predicted[topic == "space"] = 0  # the model gets space wrong
    probabilities[np.arange(len(topic)), predicted] = 0.8
    predictions = {"m": Predictions("m", dataset.name, {"p": probabilities},
                                    {"p": MulticlassPreds(vocab=names, parent="topic")})}
    outcomes = compute_outcomes(dataset, predictions)
    found = run_job(clusters.cluster_job(coords))
    infos = clusters.describe_clusters(dataset, found, outcomes)
    by_gold = {info.gold: info for info in infos}
    assert set(by_gold) == set(TOPICS)
    assert by_gold["space"].accuracy["m"] == 0.0 and by_gold["sport"].accuracy["m"] == 1.0
    assert by_gold["sport"].gold_share == 1.0
    assert "space 100%" in by_gold["space"].label() and "m 0%" in by_gold["space"].label()


def test_tabular_clusters_are_named_by_their_unusual_columns():
    rng = np.random.default_rng(1)
    high = rng.normal(0, 1, 150) + np.r_[np.full(75, 5.0), np.zeros(75)]
    table = pa.table({"income": high, "noise": rng.normal(0, 1, 150),
                      "kind": ["city"] * 75 + ["farm"] * 75})
    dataset = Dataset(table, {"income": Scalar(), "noise": Scalar(), "kind": CategoryLabel()},
                      "t")
    coords = np.c_[high, rng.normal(0, 0.3, 150)].astype(np.float32)
    found = run_job(clusters.cluster_job(coords))
    infos = clusters.describe_clusters(dataset, found)
    titles = {info.cluster: info.title for info in infos}
    rich = found[0]
    assert "income high" in titles[rich] and "kind=city" in titles[rich]
    assert "income low" in titles[found[-1]]


def test_a_large_layout_is_clustered_on_a_sample_and_every_point_assigned():
    rng = np.random.default_rng(2)
    blobs = np.repeat(np.arange(4), 8_000)
    centres = np.array([[0, 0], [20, 0], [0, 20], [20, 20]], np.float32)
    coords = centres[blobs] + rng.normal(0, 1, (len(blobs), 2)).astype(np.float32)
    found = run_job(clusters.cluster_job(coords, sample=5_000))
    assert found.max() == 3
    for blob in range(4):
        members = found[(blobs == blob) & (found != clusters.NOISE)]
        assert np.bincount(members).max() / len(members) > 0.99
    assert (found == clusters.NOISE).mean() < 0.1
    centres_found = clusters.cluster_centres(coords, found, 4)
    assert np.all(np.isfinite(centres_found))


# -- the projector's cluster names --------------------------------------------------------


def test_projector_draws_cluster_names_that_select_and_save_as_slices(qtbot, runner):
    import os

    from PySide6.QtCore import QPointF, Qt

    from litdesk.core.session import Session
    from litdesk.ui.docks.projector import ProjectorDock

    dataset, coords, topic = topic_corpus()
    table = dataset.table.append_column("x", pa.array(coords[:, 0])).append_column(
        "y", pa.array(coords[:, 1]))
    spec = {**dataset.spec(), "x": Scalar(), "y": Scalar()}
    session = Session()
    projector = ProjectorDock(session, runner)
    qtbot.addWidget(projector)
    projector.resize(760, 560)
    projector.show()
    qtbot.waitExposed(projector)
    with qtbot.waitSignal(projector.projected, timeout=10_000):
        session.set_dataset(Dataset(table, spec, "topics"))
        projector.method.setCurrentIndex(projector.method.findData("as is"))
        projector.source.setCurrentIndex(projector.source.findText("numeric columns (2)"))
    with qtbot.waitSignal(projector.clusters_found, timeout=30_000):
        qtbot.mouseClick(projector.clusters_button, Qt.MouseButton.LeftButton)
    labels = projector.cluster_labels.items
    assert len(labels) == 3
    for item in labels:
        members = topic[projector.cluster_rows(item.cluster)]
        assert (members == members[0]).all()
        text = item.textItem.toPlainText()
        assert any(word in text for word in TOPICS[members[0]].split()), text
    # the labels keep their size on screen when zooming (they ignore the view's scale)
    item = labels[0]
    before = item.sceneBoundingRect().size()
    projector.view_box.scaleBy((0.25, 0.25))
    qtbot.waitUntil(lambda: True)
    after = item.sceneBoundingRect().size()
    assert abs(before.width() - after.width()) < 1 and abs(before.height() - after.height()) < 1
    projector.fit_view()
    screenshot = os.environ.get("LITDESK_SCREENSHOTS")
    if screenshot:
        projector.grab().save(os.path.join(screenshot, "projector_clusters.png"))
    # clicking a name selects its cluster
    centre = item.mapToScene(item.boundingRect().center())
    pixel = projector.plot.mapFromScene(centre)
    qtbot.mouseClick(projector.plot.viewport(), Qt.MouseButton.LeftButton, pos=pixel)
    assert session.selection.rows.tolist() == projector.cluster_rows(item.cluster).tolist()
    assert len(session.clusters) == 3  # for the Metrics dock's facet
    names = projector.save_clusters_as_slices()
    assert len(names) == 3 and all(name.startswith("Cluster ") for name in names)
    assert sum(len(session.slices[name]) for name in names) == int(
        (projector.clusters >= 0).sum())
    qtbot.mouseClick(projector.clusters_button, Qt.MouseButton.LeftButton)  # off: names go
    assert not projector.cluster_labels.items and not session.clusters


def test_the_metrics_dock_measures_each_projector_cluster(qtbot, runner):
    from litdesk.core.session import Session
    from litdesk.ui.docks.metrics import CLUSTERS_FACET, MetricsDock

    dataset, coords, topic = topic_corpus(per_topic=30)
    names = list(TOPICS)
    predicted = np.array([names.index(t) for t in topic])
    predicted[topic == "space"] = 0  # wrong on every space row
    probabilities = np.full((len(topic), 3), 0.1)
    probabilities[np.arange(len(topic)), predicted] = 0.8
    session = Session()
    session.set_dataset(dataset)
    session.set_predictions(Predictions("m", dataset.name, {"p": probabilities},
                                        {"p": MulticlassPreds(vocab=names, parent="topic")}))
    dock = MetricsDock(session, runner)
    qtbot.addWidget(dock)
    dock.show()
    qtbot.waitExposed(dock)
    found = run_job(clusters.cluster_job(coords))
    space = int(np.bincount(found[topic == "space"]).argmax())
    groups = {f"Cluster {c + 1}": np.flatnonzero(found == c) for c in range(3)}
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        session.set_clusters(groups)
    index = dock.facet_choice.findData(CLUSTERS_FACET)
    assert index >= 0
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        dock.facet_choice.setCurrentIndex(index)
    table = dock.table_data
    assert set(groups) <= set(table.groups)
    assert table.entry(f"Cluster {space + 1}", "m").values["accuracy"] == 0.0
    other = next(name for name in groups if name != f"Cluster {space + 1}")
    assert table.entry(other, "m").values["accuracy"] == 1.0
    with qtbot.waitSignal(dock.refreshed, timeout=10_000):
        session.set_clusters({})
    assert dock.facet_choice.findData(CLUSTERS_FACET) < 0
