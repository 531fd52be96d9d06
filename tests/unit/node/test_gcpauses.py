"""The node's garbage collector settings: set while it runs, every pass timed, Python's
own thresholds back once it stops."""

from __future__ import annotations

import gc

from node.gcpauses import OLDER_THRESHOLDS, YOUNG_THRESHOLD, GcPauses


def test_thresholds_are_the_nodes_while_it_runs_and_each_pass_is_timed() -> None:
    before = gc.get_threshold()
    pauses = GcPauses()
    pauses.start()
    try:
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        gc.collect()
        gc.collect(0)
        assert pauses.collections[2] >= 1 and pauses.collections[0] >= 1
        assert pauses.seconds[2] > 0 and pauses.longest >= max(pauses.seconds[2] / pauses.collections[2],
                                                                pauses.seconds[0] / pauses.collections[0])
    finally:
        pauses.stop()
    assert gc.get_threshold() == before
    counted = list(pauses.collections)
    gc.collect()
    assert pauses.collections == counted  # no longer timed
