"""Batches of an iterable, and a thread that makes them one ahead of their consumer."""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterable, Iterator


def batches(rows: Iterable, size: int) -> Iterator[list]:
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def prefetch(iterable: Iterable, depth: int = 1) -> Iterator:
    """Run ``iterable`` in a thread, at most ``depth`` items ahead of the consumer.

    The importer's parsing and validation (pure Python) then overlaps with the database's
    work on the previous batch. The producer must not touch the database.

    "Ahead" counts the item being made: the producer starts the next one only once the
    consumer has taken the last, so at most ``depth + 1`` items are alive at once (the
    consumer's and those ahead) — a batch's worth of memory less than a queue of
    ``depth`` that a producer fills while holding one more.
    """
    channel: queue.Queue = queue.Queue()
    slots = threading.Semaphore(depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            elements = iter(iterable)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                element = next(elements, done)
                channel.put((None, element))
                if element is done:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            channel.put((exc, None))

    worker = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            exc, element = channel.get()
            if exc is not None:
                raise exc
            if element is done:
                return
            slots.release()
            yield element
    finally:
        stop.set()
        worker.join(timeout=5)
