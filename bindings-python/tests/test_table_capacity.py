"""The in-process table at its largest: 2**16 keys, every verb still cheap."""

from __future__ import annotations

import threading
import time

import stormguard as sg


def test_a_table_of_65536_keys_holds_them_all_and_evicts_none() -> None:
    capacity = 1 << 16
    table = sg.IdempotencyTable(capacity=capacity)
    assert table.capacity == capacity
    started = time.perf_counter()
    for i in range(capacity):
        begun = table.begin(f"key-{i}", i)
        assert begun.kind == "execute" and begun.ticket is not None
        assert table.complete(begun.ticket, i)
    fill = time.perf_counter() - started
    assert len(table) == capacity
    refused = table.begin("one-too-many", 0)
    assert (refused.kind, refused.status) == ("full", 503)
    for i in range(0, capacity, 997):
        replay = table.begin(f"key-{i}", i)
        assert (replay.kind, replay.response) == ("replay", i)
        assert table.begin(f"key-{i}", i + 1).status == 422
    # A linear scan would take minutes here (2**32 / 2 key comparisons);
    # a constant-time table fills in well under a few seconds.
    assert fill < 20.0, f"filling 65536 keys took {fill:.1f} s"


def test_the_largest_table_can_be_built_from_a_thread_with_a_small_stack() -> None:
    built: list[int] = []
    threading.stack_size(256 * 1024)
    try:
        worker = threading.Thread(
            target=lambda: built.append(sg.IdempotencyTable(1 << 16).capacity)
        )
        worker.start()
        worker.join()
    finally:
        threading.stack_size(0)
    assert built == [1 << 16]
