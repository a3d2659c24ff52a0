"""Build the tabular demo: scikit-learn's breast cancer data and three classifiers for it.

    python litdesk/resources/demo_tabular/train.py [--out DIR]

Writes into DIR (default: this folder):

- ``breast_cancer.csv``: the 569 rows of ``sklearn.datasets.load_breast_cancer`` with
  snake_case feature names, the diagnosis as ``label`` (``malignant`` or ``benign``) and a
  stratified, seeded ``split`` column (``train`` or ``test``);
- ``logistic_regression.joblib`` (standard scaling + logistic regression),
  ``boosted_trees.joblib`` (HistGradientBoostingClassifier) and ``mlp.joblib`` (standard
  scaling + a one-hidden-layer MLPClassifier), each fitted on the train split as a pandas
  DataFrame so that the litdesk sklearn plugin knows which columns they read;
- ``models.json``: each model file's SHA-256, which lets litdesk open these files without
  asking for trust (litdesk.core.trusted_files), the scikit-learn version that wrote them and
  each model's test accuracy.

The CSV is read back before training, so the models see exactly the values litdesk loads.
Seeds are fixed: a run writes the same CSV and models that predict the same; the pickles'
bytes differ across CPUs, so the shipped ones are the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
SEED = 7
TEST_FRACTION = 0.25
MANIFEST = "models.json"


def write_dataset(csv_path: Path) -> None:
    """The breast cancer data as a CSV with readable column names, a label and a split."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer(as_frame=True)
    frame = data.data.rename(columns=lambda name: name.replace(" ", "_"))
    frame["label"] = data.target.map(dict(enumerate(data.target_names)))
    train_rows, _ = train_test_split(frame.index, test_size=TEST_FRACTION,
                                     stratify=frame["label"], random_state=SEED)
    frame["split"] = "test"
    frame.loc[train_rows, "split"] = "train"
    frame.to_csv(csv_path, index=False, lineterminator="\n")


def build_models() -> dict:
    """The three unfitted classifiers, by file stem."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.5)),
        "boosted_trees": HistGradientBoostingClassifier(
            max_iter=60, max_leaf_nodes=8, learning_rate=0.15, random_state=SEED),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(16,), alpha=1e-2, max_iter=600, random_state=SEED)),
    }


def sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import joblib
    import pandas as pd
    import sklearn

    csv_path = args.out / "breast_cancer.csv"
    write_dataset(csv_path)
    frame = pd.read_csv(csv_path)
    features = [name for name in frame.columns if name not in ("label", "split")]
    train, test = frame[frame["split"] == "train"], frame[frame["split"] == "test"]

    manifest = {"sklearn_version": sklearn.__version__, "files": {}, "test_accuracy": {}}
    for name, model in build_models().items():
        model.fit(train[features], train["label"])
        path = args.out / f"{name}.joblib"
        joblib.dump(model, path, compress=3)
        manifest["files"][path.name] = sha256(path)
        accuracy = float((model.predict(test[features]) == test["label"]).mean())
        manifest["test_accuracy"][name] = round(accuracy, 4)
        print(f"{name}: test accuracy {accuracy:.1%}, {path.stat().st_size / 1024:.0f} KiB")
    (args.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"{len(train)} train rows, {len(test)} test rows -> {args.out}")


if __name__ == "__main__":
    main()
