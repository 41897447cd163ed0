"""Where the workers run: a process pool on this machine (``local``) or Ray actors (``ray``).

Both engines have the same small surface for the driver: ``free`` slots, ``submit(job)``,
``poll(timeout) -> (finished results, frames processed since the last poll)`` and
``close(abort)``. Each worker loads the model once and then takes one video at a time; the
driver hands out a video only when a worker is free, so a crash or Ctrl+C loses at most the
videos being analysed at that moment.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import signal
import socket
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from emotrace.batch.worker import VideoAnalyzer, VideoJob, VideoResult, describe
from emotrace.errors import ConfigError, MissingDependencyError
from emotrace.video.options import PipelineOptions

ENGINES = ("local", "ray")


class Engine(Protocol):
    """What the driver needs from an engine."""

    workers: int

    @property
    def free(self) -> int:
        """Workers without a video."""

    def submit(self, job: VideoJob) -> None:
        """Give ``job`` to a free worker."""

    def poll(self, timeout: float) -> tuple[list[VideoResult], int]:
        """Results finished within ``timeout`` seconds, and frames processed meanwhile."""

    def close(self, abort: bool = False) -> None:
        """Stop the workers (``abort``: at once, dropping the videos they are analysing)."""


def _died(job: VideoJob, why: str) -> VideoResult:
    return VideoResult(job.video, job.folder, "failed", error=why)


# -- local: a process pool ----------------------------------------------------------------------

_ANALYZER: VideoAnalyzer | None = None
_PROGRESS: Any = None


def _init_local(options: PipelineOptions, progress: Any) -> None:
    """Pool initializer: load the model once per process."""
    global _ANALYZER, _PROGRESS
    # Ctrl+C in a terminal reaches the whole process group; the driver alone handles it and
    # stops the workers, so they do not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _ANALYZER, _PROGRESS = VideoAnalyzer(options), progress


def _analyze_local(job: VideoJob) -> VideoResult:
    assert _ANALYZER is not None  # set by _init_local
    return _ANALYZER.analyze(job, lambda n: _PROGRESS.put(n))


class LocalEngine:
    """``workers`` processes (started with ``spawn``: OpenCV and onnxruntime threads do not
    survive a fork) on this machine, each with its own model."""

    def __init__(self, options: PipelineOptions, workers: int) -> None:
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self._context = context
        self._options = options
        self._progress: Any = context.Queue()
        self._pool = self._start()
        self._running: dict[Future[VideoResult], VideoJob] = {}

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=self._context,
            initializer=_init_local,
            initargs=(self._options, self._progress),
        )

    @property
    def free(self) -> int:
        return self.workers - len(self._running)

    def submit(self, job: VideoJob) -> None:
        self._running[self._pool.submit(_analyze_local, job)] = job

    def _drain(self) -> int:
        frames = 0
        while True:
            try:
                frames += int(self._progress.get_nowait())
            except queue.Empty:
                return frames

    def poll(self, timeout: float) -> tuple[list[VideoResult], int]:
        done, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        results, broken = [], False
        for future in done:
            job = self._running.pop(future)
            try:
                results.append(future.result())
            except BrokenProcessPool:
                broken = True
                results.append(_died(job, "the worker process died while analysing it"))
            except Exception as exc:  # pickling problems and the like: this video only
                results.append(_died(job, describe(exc)))
        if broken:
            # Every video in flight fails with a dead pool (which one killed it is unknown); a
            # rerun retries them. The others go on in a fresh pool.
            for future, job in list(self._running.items()):
                results.append(_died(job, "the worker process died while analysing it"))
                del self._running[future]
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
        return results, self._drain()

    def close(self, abort: bool = False) -> None:
        if abort:
            # Workers ignore SIGINT and would finish their (perhaps hour-long) videos first.
            for child in multiprocessing.active_children():
                child.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._progress.close()


# -- ray: actors ---------------------------------------------------------------------------------


def import_ray() -> Any:
    """``ray``, or :class:`MissingDependencyError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "--engine ray needs ray; install it with: pip install 'emotrace[ray]'"
        ) from None
    return ray


def check_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail in one line when nothing listens at ``host:port`` (Ray itself retries for minutes)."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"--address {address!r}: expected HOST:PORT (or auto, or ray://HOST:PORT)"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--address {address}: no Ray cluster reachable there ({exc.strerror or exc})"
        ) from None


def init_ray(address: str | None, num_cpus: int | None) -> tuple[Any, bool]:
    """Join the cluster at ``address`` or start a local one; ``(ray, started_here)``.

    Without ``address`` Ray's own convention holds: ``RAY_ADDRESS`` names a cluster to join,
    else a local one starts with ``num_cpus``. A driver that already called ``ray.init`` keeps
    its cluster.
    """
    import os

    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_address(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise ConfigError(f"--address {address}: {exc}") from None
        return ray, False
    ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
    return ray, True


class _RayWorker:
    """The actor: a :class:`VideoAnalyzer` plus a queue for frame progress."""

    def __init__(self, options: PipelineOptions, progress: Any) -> None:
        self.analyzer = VideoAnalyzer(options)
        self.progress = progress

    def analyze(self, job: VideoJob) -> VideoResult:
        return self.analyzer.analyze(job, self.progress.put)


class RayEngine:
    """``workers`` Ray actors of ``threads`` CPUs each, on the cluster of :func:`init_ray`
    (default: as many as the cluster's CPUs hold). Too many for the cluster is an error: the
    surplus actors would wait for CPUs forever."""

    def __init__(
        self,
        options: PipelineOptions,
        workers: int | None,
        threads: int,
        address: str | None = None,
    ) -> None:
        import os

        ray, self._started_here = init_ray(address, os.cpu_count())
        self._ray = ray
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            workers = workers or max(1, cpus // threads)
            if workers * threads > cpus:
                raise ConfigError(
                    f"--workers {workers} with {threads} thread(s) each needs {workers * threads} "
                    f"CPUs; the Ray cluster has {cpus}"
                )
            from ray.util.queue import Queue

            self.workers = workers
            self._progress = Queue(actor_options={"num_cpus": 0})
            self._actor_class = ray.remote(num_cpus=threads)(_RayWorker)
            self._options = options
            self._idle = [self._new_actor() for _ in range(workers)]
            self._running: dict[Any, tuple[Any, VideoJob]] = {}
        except BaseException:
            self._shutdown()
            raise

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self._options, self._progress)

    @property
    def free(self) -> int:
        return len(self._idle)

    def submit(self, job: VideoJob) -> None:
        actor = self._idle.pop()
        self._running[actor.analyze.remote(job)] = (actor, job)

    def poll(self, timeout: float) -> tuple[list[VideoResult], int]:
        ray = self._ray
        results = []
        if self._running:
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
            if ready:  # take everything else that is ready too
                ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
            for ref in ready:
                actor, job = self._running.pop(ref)
                try:
                    results.append(ray.get(ref))
                except ray.exceptions.RayActorError:
                    results.append(_died(job, "the Ray worker died while analysing it"))
                    ray.kill(actor)
                    actor = self._new_actor()
                except ray.exceptions.RayError as exc:
                    results.append(_died(job, describe(exc)))
                self._idle.append(actor)
        frames = 0
        size = self._progress.qsize()
        if size:
            frames = sum(int(n) for n in self._progress.get_nowait_batch(size))
        return results, frames

    def _shutdown(self) -> None:
        if self._started_here:
            self._ray.shutdown()

    def close(self, abort: bool = False) -> None:
        ray = self._ray
        for actor in [*self._idle, *(actor for actor, _ in self._running.values())]:
            ray.kill(actor)
        self._progress.shutdown(force=True)
        self._shutdown()
