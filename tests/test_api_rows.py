"""Reading rows of a dataset's table as dicts: the same rows however they are fetched."""

import numpy as np
import pyarrow as pa
import pytest

from litdesk.api.dataset import SLICED_ROWS, table_rows


@pytest.mark.parametrize("chunks", [1, 7])
def test_table_rows_match_arrow_take_however_the_rows_are_picked(chunks):
    """Runs are one slice, a few scattered rows of a chunked table one slice each, many rows
    one take: all give what ``take`` gives, in the order asked."""
    numbers = np.arange(700)
    table = pa.concat_tables(
        pa.table({"n": part, "text": [f"row {n}" for n in part]})
        for part in np.array_split(numbers, chunks))
    assert table.column(0).num_chunks == chunks
    picks = [[], [5], list(range(100, 164)), [699, 3, 3, 250],
             np.random.default_rng(0).integers(0, 700, SLICED_ROWS + 1)]
    for positions in picks:
        assert table_rows(table, positions) == table.take(pa.array(positions, pa.int64())
                                                          ).to_pylist()
    for outside in ([700], [-1], [698, 699, 700]):
        with pytest.raises(IndexError):
            table_rows(table, outside)
