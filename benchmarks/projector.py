"""The Embedding Projector drawing N points while panning and zooming, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/projector.py --points 1000000 --json

Each frame is one pan or zoom step followed by a synchronous repaint of the plot; the
figure is the wall time of both, on the GUI thread. A large cloud renders the new frame on a
worker meanwhile (the last one is shown stretched): ``frame_ready_ms`` is the time until the
new frame is on screen. The same steps are timed on a plain pyqtgraph
``ScatterPlotItem`` of the same points in the same run (fewer frames: each takes long).
Prints one JSON line: ``frame_ms_median`` for litdesk's projector, ``baseline_frame_ms_median``
for the plain scatter, their ratio, and how many frames drew discs versus pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from litdesk.api import CategoryLabel, Dataset  # noqa: E402
from litdesk.core.session import Session  # noqa: E402
from litdesk.ui.docks.projector import ProjectorDock  # noqa: E402
from litdesk.ui.jobs import JobRunner  # noqa: E402
from litdesk.ui.palette import CATEGORY_COLORS  # noqa: E402

SIZE = (1000, 700)


def clustered_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 2D points in 12 Gaussian clusters of different spreads, and their cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(12, 2))
    spreads = rng.uniform(0.3, 2.0, size=12)
    cluster = rng.integers(0, 12, size=n)
    points = centres[cluster] + rng.normal(size=(n, 2)) * spreads[cluster, None]
    return points.astype(np.float32), cluster


def camera_path(steps: int) -> list[tuple[float, float, float]]:
    """(centre x, centre y, half width) per frame: zoom from the whole cloud to 1/60 of it
    while drifting, then back out."""
    path = []
    for i in range(steps):
        t = i / max(steps - 1, 1)
        depth = 1 - abs(2 * t - 1)  # 0 → 1 → 0
        half = 14 * (1 / 60) ** depth
        path.append((6 * np.sin(3 * t), 4 * np.cos(2 * t), half))
    return path


def time_frames(widget, view_box, path) -> list[float]:
    times = []
    aspect = SIZE[1] / SIZE[0]
    for cx, cy, half in path:
        start = time.perf_counter()
        view_box.setRange(xRange=(cx - half, cx + half), yRange=(cy - half * aspect,
                                                                  cy + half * aspect), padding=0)
        QApplication.processEvents()
        widget.viewport().repaint()
        times.append((time.perf_counter() - start) * 1000)
    return times


def litdesk_frames(points: np.ndarray, cluster: np.ndarray, steps: int
                   ) -> tuple[list[float], list[float], int]:
    session = Session()
    labels = pa.array(np.asarray([f"cluster {c}" for c in range(12)], dtype=object)[cluster])
    session.set_dataset(Dataset(pa.table({"cluster": labels}),
                                {"cluster": CategoryLabel()}, "bench"))
    dock = ProjectorDock(session, JobRunner())
    dock.resize(*SIZE)
    dock.show()
    QApplication.processEvents()
    dock.set_coords(points, ("bench",), "bench")
    while len(dock.cloud) != len(points):  # the drawing is prepared on the worker
        QApplication.processEvents()
    path = camera_path(steps)
    time_frames(dock.plot, dock.view_box, path[:3])  # warm-up
    disc_frames, times, ready = 0, [], []
    for step in path:
        start = time.perf_counter()
        times += time_frames(dock.plot, dock.view_box, [step])
        while dock.cloud.rendering:  # a large cloud's frame comes from the worker
            QApplication.processEvents()
        ready.append((time.perf_counter() - start) * 1000)
        disc_frames += dock.cloud.last_visible_count <= dock.cloud.point_limit
    dock.close()
    return times, ready, disc_frames


def baseline_frames(points: np.ndarray, cluster: np.ndarray, steps: int) -> list[float]:
    plot = pg.PlotWidget(background="w")
    plot.resize(*SIZE)
    brushes = [pg.mkBrush(color) for color in CATEGORY_COLORS]
    plot.addItem(pg.ScatterPlotItem(x=points[:, 0], y=points[:, 1], size=6, pen=None,
                                    brush=[brushes[c % len(brushes)] for c in cluster]))
    plot.show()
    QApplication.processEvents()
    path = camera_path(steps)
    time_frames(plot, plot.getPlotItem().vb, path[:1])  # warm-up
    times = time_frames(plot, plot.getPlotItem().vb, path)
    plot.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--baseline-frames", type=int, default=12)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    QApplication.instance() or QApplication([])
    points, cluster = clustered_points(args.points)
    ours, ready, disc_frames = litdesk_frames(points, cluster, args.frames)
    theirs = baseline_frames(points, cluster, args.baseline_frames)
    result = {
        "points": args.points,
        "frames": len(ours),
        "frame_ms_median": round(statistics.median(ours), 1),
        "frame_ms_p90": round(float(np.percentile(ours, 90)), 1),
        "frame_ms_max": round(max(ours), 1),
        "frame_ready_ms_median": round(statistics.median(ready), 1),
        "frame_ready_ms_max": round(max(ready), 1),
        "disc_frames": disc_frames,
        "pixel_frames": len(ours) - disc_frames,
        "baseline_frame_ms_median": round(statistics.median(theirs), 1),
        "speedup": round(statistics.median(theirs) / statistics.median(ours), 1),
    }
    if not args.json:
        print("litdesk projector vs a plain pyqtgraph ScatterPlotItem (pan and zoom frames):")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
