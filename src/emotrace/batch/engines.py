"""Where the workers run: a process pool on this machine (``local``) or Ray actors (``ray``).

Both engines have the same small surface for the driver: ``free`` slots, ``submit(job)``,
``poll(timeout) -> (finished results, frames processed since the last poll)`` and
``close(abort)``. Each worker loads the model once and then takes one video at a time; the
driver hands out a video only when a worker is free, so a crash or Ctrl+C loses at most the
videos being analysed at that moment.

Ray moves videos one of two ways (``transfer``): ``shared``, workers read each video and write
its records at the driver's paths (one filesystem on every node); ``send``, the driver streams
each video in chunks through Ray's object store and the worker returns the records as bytes, so
nodes share nothing but Ray. A video given as a URL is read by its worker either way.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import socket
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from emotrace.batch.inputs import url_scheme
from emotrace.batch.worker import (
    CHUNK_BYTES,
    MAX_SEND_MB,
    VideoAnalyzer,
    VideoJob,
    VideoResult,
    describe,
    read_url,
)
from emotrace.errors import ConfigError, MissingDependencyError
from emotrace.video.options import PipelineOptions

ENGINES = ("local", "ray")
#: How Ray workers get their videos and give back their records (see the module's doc).
TRANSFERS = ("shared", "send")


class Engine(Protocol):
    """What the driver needs from an engine."""

    workers: int

    @property
    def free(self) -> int:
        """Workers without a video."""

    @property
    def busy(self) -> int:
        """Videos given to workers and not yet returned by :meth:`poll`."""

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
    if url_scheme(job.video):
        return _ANALYZER.analyze_sent(job, read_url(job.video), _PROGRESS.put)
    return _ANALYZER.analyze(job, _PROGRESS.put)


def read_chunks(path: str) -> Iterator[bytes]:
    """The driver's read of a video it sends, :data:`CHUNK_BYTES` at a time."""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


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

    @property
    def busy(self) -> int:
        return len(self._running)

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


# -- ray: actors---------------------------------------------------------------------------------

#: What to set to join a cluster with token authentication (Ray 2.59 turned it on by default for
#: local clusters, 2.61 for all), in the words of the one-line error.
AUTH_HELP = (
    "set RAY_AUTH_MODE=token and the cluster's token (RAY_AUTH_TOKEN, or the file "
    "RAY_AUTH_TOKEN_PATH names, default ~/.ray/auth_token) in this shell, as on its nodes"
)


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
    """Fail in one line when nothing listens at ``host:port`` (Ray itself retries for minutes)
    or when the cluster refuses this driver's authentication (Ray retries for 20 s, warning)."""
    if address == "auto":
        return
    client = address.startswith("ray://")
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
    if not client:  # Ray Client (ray://) speaks another protocol; its server checks the token
        check_authentication(address, target)


def check_authentication(address: str, target: str) -> None:
    """One authenticated request to the cluster's GCS, answered at once (Ray's C++ client
    writes a warning to stderr on refusal; it is held back here)."""
    import os

    from ray._raylet import GcsClient  # type: ignore[attr-defined]
    from ray.exceptions import AuthenticationError

    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    try:
        with _quiet_stderr():
            GcsClient(address=target)
    except AuthenticationError:
        if mode != "token":
            shown = f"RAY_AUTH_MODE is {mode!r}" if mode else "RAY_AUTH_MODE is not set"
            raise ConfigError(
                f"--address {address}: the Ray cluster there uses token authentication and "
                f"{shown} here: {AUTH_HELP}"
            ) from None
        raise ConfigError(
            f"--address {address}: the Ray cluster there refused this token (token "
            f"authentication): {AUTH_HELP}"
        ) from None
    except Exception:  # anything else: ray.init says it in its own words
        return


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null meanwhile (C++ libraries write there directly)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def init_ray(address: str | None, num_cpus: int | None) -> tuple[Any, bool]:
    """Join the cluster at ``address`` or start a local one; ``(ray, started_here)``.

    Without ``address`` Ray's own convention holds: ``RAY_ADDRESS`` names a cluster to join,
    else a new local one starts with ``num_cpus`` (never one another program started here). A
    driver that already called ``ray.init`` keeps its cluster.
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
        except ray.exceptions.AuthenticationError as exc:
            first = " ".join(str(exc.message).split())
            raise ConfigError(f"--address {address}: {first}; {AUTH_HELP}") from None
        except ConnectionError as exc:
            raise ConfigError(f"--address {address}: {exc}") from None
        return ray, False
    # "local": a new cluster of our own, even where `ray start` left one running on this machine
    # (Ray would join that one, and refuse the num_cpus given to it).
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **options)
    return ray, True


class _RayWorker:
    """The actor: a :class:`VideoAnalyzer` plus a queue for frame progress."""

    def __init__(self, options: PipelineOptions, progress: Any) -> None:
        self.analyzer = VideoAnalyzer(options)
        self.progress = progress

    def ready(self) -> bool:
        """Answers once the model is loaded (a replacement gets videos only then)."""
        return True

    def report(self, frames: int) -> None:
        """Frame progress for the driver's bar: best effort, never a video's failure."""
        with contextlib.suppress(Exception):
            self.progress.put(frames, timeout=5)

    def analyze(self, job: VideoJob) -> VideoResult:
        """``shared``: read the video and write the records at the job's paths."""
        return self.analyzer.analyze(job, self.report)

    def analyze_sent(self, job: VideoJob, chunks: list[Any] | None) -> VideoResult:
        """``send``: the video's bytes as object refs (fetched one chunk at a time), or from
        its URL when ``chunks`` is None; the records come back in the result."""
        import ray

        data = read_url(job.video) if chunks is None else (ray.get(ref) for ref in chunks)
        return self.analyzer.analyze_sent(job, data, self.report)


class RayEngine:
    """``workers`` Ray actors of ``threads`` CPUs each, on the cluster of :func:`init_ray`
    (default: as many as the cluster's CPUs hold). Too many for the cluster is an error: the
    surplus actors would wait for CPUs forever.

    ``transfer``: ``shared`` or ``send`` (see the module's doc); ``send`` refuses videos over
    ``max_send_mb`` MiB (they are indexed as failed). An actor that dies (its node left the
    cluster, say) fails its video, which a rerun retries; it is replaced while the cluster still
    has the CPUs, and the replacement gets videos only once it is up (one placed on a node that
    is going away dies without taking a video along); else the batch goes on with fewer workers.
    """

    def __init__(
        self,
        options: PipelineOptions,
        workers: int | None,
        threads: int,
        address: str | None = None,
        transfer: str = "shared",
        max_send_mb: int = MAX_SEND_MB,
    ) -> None:
        import os

        if transfer not in TRANSFERS:
            raise ConfigError(f"transfer {transfer!r} is not one of {', '.join(TRANSFERS)}")
        ray, self._started_here = init_ray(address, os.cpu_count())
        self._ray = ray
        self.transfer, self.max_send_bytes = transfer, max_send_mb * 2**20
        self._threads = threads
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            workers = workers or max(1, cpus // threads)
            if workers * threads > cpus:
                raise ConfigError(
                    f"--workers {workers} with {threads} thread(s) each needs {workers * threads} "
                    f"CPUs; the Ray cluster has {cpus}"
                )
            from ray.util.queue import Queue
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            self.workers = workers
            # The progress queue lives on the driver's node, which lasts as long as the driver
            # (a soft affinity let Ray place it on a worker node, which may leave).
            here = ray.get_runtime_context().get_node_id()
            self._progress = Queue(
                actor_options={
                    "num_cpus": 0,
                    "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False),
                }
            )
            self._actor_class = ray.remote(num_cpus=threads)(_RayWorker)
            self._options = options
            self._idle = [self._new_actor() for _ in range(workers)]
            self._running: dict[Any, tuple[Any, VideoJob]] = {}
            self._starting: dict[Any, Any] = {}  # replacements: ready() ref -> actor
            self._done: list[VideoResult] = []  # refused before any worker saw them
        except BaseException:
            self._shutdown()
            raise

    def _new_actor(self) -> Any:
        return self._actor_class.remote(self._options, self._progress)

    @property
    def free(self) -> int:
        return len(self._idle)

    @property
    def busy(self) -> int:
        return len(self._running) + len(self._done)

    def submit(self, job: VideoJob) -> None:
        actor = self._idle[-1]
        if url_scheme(job.video):
            ref = actor.analyze_sent.remote(VideoJob(job.video, "", job.keep_faces), None)
        elif self.transfer == "send":
            try:
                chunks = self._send(job.video)
            except (OSError, ConfigError) as exc:
                self._done.append(_died(job, describe(exc)))
                return
            # The folder stays here: the worker never learns a path of the driver's.
            ref = actor.analyze_sent.remote(VideoJob(job.video, "", job.keep_faces), chunks)
        else:
            ref = actor.analyze.remote(job)
        self._idle.pop()
        self._running[ref] = (actor, job)

    def _send(self, path: str) -> list[Any]:
        """The video at ``path`` as object refs of :data:`CHUNK_BYTES` each."""
        import os

        size = os.path.getsize(path)
        if size > self.max_send_bytes:
            raise ConfigError(
                f"{path}: {size / 2**20:.0f} MiB is over the {self.max_send_bytes // 2**20} MiB "
                "that --transfer send moves (raise --max-send-mb, or give a URL or shared storage)"
            )
        return [self._ray.put(chunk) for chunk in read_chunks(path)]

    def poll(self, timeout: float) -> tuple[list[VideoResult], int]:
        ray = self._ray
        results, self._done = self._done, []
        waiting = [*self._running, *self._starting]
        if waiting and not results:
            ray.wait(waiting, num_returns=1, timeout=timeout)
        if self._running:  # take everything that is ready
            ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
            for ref in ready:
                actor, job = self._running.pop(ref)
                try:
                    result = ray.get(ref)
                    result.folder = job.folder
                    results.append(result)
                except ray.exceptions.RayActorError:
                    results.append(
                        _died(
                            job,
                            "the Ray worker died while analysing it (or its node left the "
                            "cluster); a rerun retries it",
                        )
                    )
                    ray.kill(actor)
                    self._replace()
                    continue
                except ray.exceptions.RayError as exc:
                    results.append(_died(job, describe(exc)))
                self._idle.append(actor)
        if self._starting:
            self._check_replacements()
        return results, self._frames()

    def _replace(self) -> None:
        """Start a replacement where the cluster still has CPUs for every worker, else go on
        with one worker fewer (an actor waiting for CPUs that never come would hang the batch)."""
        if self.workers * self._threads <= int(self._ray.cluster_resources().get("CPU", 0)):
            actor = self._new_actor()
            self._starting[actor.ready.remote()] = actor
        else:
            self.workers -= 1

    def _check_replacements(self) -> None:
        ray = self._ray
        ready, _ = ray.wait(list(self._starting), num_returns=len(self._starting), timeout=0)
        for ref in ready:
            actor = self._starting.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.RayError:  # placed on a node that went away: try again
                ray.kill(actor)
                self._replace()
            else:
                self._idle.append(actor)
        # Nodes that left since: replacements still waiting for their CPUs give up.
        cpus = int(ray.cluster_resources().get("CPU", 0))
        while self._starting and self.workers * self._threads > cpus:
            ray.kill(self._starting.popitem()[1])
            self.workers -= 1

    def _frames(self) -> int:
        try:
            size = self._progress.qsize()
            return sum(int(n) for n in self._progress.get_nowait_batch(size)) if size else 0
        except self._ray.exceptions.RayError:  # progress is best effort; the results are not
            return 0

    def _shutdown(self) -> None:
        if self._started_here:
            self._ray.shutdown()

    def close(self, abort: bool = False) -> None:
        ray = self._ray
        running = (actor for actor, _ in self._running.values())
        for actor in [*self._idle, *running, *self._starting.values()]:
            ray.kill(actor)
        self._progress.shutdown(force=True)
        self._shutdown()
