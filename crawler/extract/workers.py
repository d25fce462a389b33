"""The extraction worker processes: started on first use, kept for the life of the process.

A crawl does not start its own workers: the daemon runs many crawls, and each new
worker costs an interpreter, the extractor's imports and py3langid's model (~0.7 s of
CPU, ~80 MB). :func:`extraction_pool` hands every crawl of the process the same pool.
Workers come from a *forkserver* (a small process started once), not from forking the
crawler itself: the crawler has threads (Twisted's pool, the scheduler), and forking a
threaded process can copy a lock some other thread held. A pool whose worker died is
replaced on the next call. Workers exit when the process that started them is gone,
even if it was killed (SIGKILL runs no clean-up).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

logger = logging.getLogger(__name__)

WORKER_NICENESS = 10  # added to the workers' nice value (lower CPU priority than the crawler)

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_size = 0


def extraction_pool(workers: int) -> ProcessPoolExecutor:
    """The process-wide pool of ``workers`` extraction processes."""
    global _pool, _size
    with _lock:
        if _pool is not None and (_size != workers or getattr(_pool, "_broken", False)):
            logger.info("extraction workers restarted (%s)", "broken" if _size == workers else "resized")
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                                        initializer=_start_worker, initargs=(os.getpid(),))
            _size = workers
        return _pool


def shutdown_pool() -> None:
    """Stop the workers (at exit; a later :func:`extraction_pool` starts new ones)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.shutdown(wait=True, cancel_futures=True)
            _pool = None


def _start_worker(owner: int) -> None:
    """In each new worker: watch the process that owns the pool, and load what every
    extraction needs once."""
    threading.Thread(target=_exit_with, args=(owner,), name="owner-watch", daemon=True).start()
    # The crawler's own process (fetching, storing) is the one the crawl waits for: when
    # the cores are busy, the OS runs it before its workers, which catch up in its gaps.
    os.nice(WORKER_NICENESS)
    from crawler.extract import detect_language
    from crawler.gc_tuning import tune_worker

    detect_language("A few words of text that load the language identification model.")
    tune_worker()  # what is loaded now lives as long as the worker


def _exit_with(owner: int, every: float = 1.0) -> None:
    """Exit this worker once process ``owner`` no longer exists."""
    while True:
        time.sleep(every)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:  # alive, under another user (pid reused): keep watching
            pass


atexit.register(shutdown_pool)
