"""The stand-in's heap settling after a version loads or unloads (manager._settle_heap)."""

from __future__ import annotations

import gc
import weakref

from tfserving_standin.core import manager


class Node:
    """An object in a reference cycle: only the cyclic collector can free it, like much of a
    loaded SavedModel's Python object graph."""

    def __init__(self):
        self.me = self


def test_live_objects_are_frozen_and_an_unloaded_versions_cycles_are_reclaimed_next_time():
    try:
        node = Node()
        ref = weakref.ref(node)
        manager._settle_heap()
        assert gc.get_freeze_count() > 0  # what lives now is exempt from later collections
        del node
        gc.collect()
        assert ref() is not None, "a frozen object is not walked by ordinary collections"
        manager._settle_heap()  # as after the next load or unload
        assert ref() is None, "settling again reclaims the cycles dropped since: nothing leaks"
    finally:
        gc.unfreeze()
