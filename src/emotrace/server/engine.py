"""The server's recognizer, its inference threads, and the per-session pipeline state.

One model is loaded per server process and shared by every client; inference runs on a small
pool of worker threads (one per core, at most :data:`MAX_WORKERS`), so every core serves.
onnxruntime sessions are thread-safe, so the classifier is shared; OpenCV's detectors are not
guaranteed to be, so each worker thread builds its own detector on first use. Clients wait for
their result before sending the next frame, so there is never more than one frame per client in
the pool's first-come queue: no client waits behind more than one frame of each other client,
and a slow one holds up at most one worker. A session's own calls (frames, patient choice, stop)
never run at once: :class:`~emotrace.server.live.LiveSession` serialises them with its lock.

A live session reuses :func:`emotrace.video.process` unchanged: its frame source is a slot that
the WebSocket handler fills with one decoded frame before asking the pipeline for the next
result, so tracking, smoothing and detect-every-N behave exactly as in ``emotrace live``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from emotrace.errors import ConfigError, SessionError
from emotrace.faces.types import FaceDetector
from emotrace.results import FaceEmotions
from emotrace.runtime.classifier import EmotionClassifier
from emotrace.runtime.loading import check_model_exists
from emotrace.runtime.recognizer import CrowdSwitch, EmotionRecognizer
from emotrace.server.images import decode_image
from emotrace.sessions.types import ModelInfo
from emotrace.video.frames import Frame, FrameSource, SourceInfo
from emotrace.video.options import CrowdOptions, PipelineOptions
from emotrace.video.pipeline import FrameResult
from emotrace.video.run import open_pipeline

T = TypeVar("T")

#: Inference threads at most: beyond four, frames of one machine's clients rarely queue.
MAX_WORKERS = 4


class _FrameSlot(FrameSource):
    """A frame source holding at most one frame, put there by :meth:`LiveAnalyzer.analyze`.

    No capture thread: ``process`` pulls the frame on the caller's thread, right after it was
    put; iteration ends if the slot is empty (which ``analyze`` never lets happen).
    """

    def __init__(self, name: str) -> None:
        super().__init__(queue_size=1)
        self.info = SourceInfo(
            name=name, kind="stream", live=True, fps=None, frame_count=None, width=0, height=0
        )
        self.pending: Frame | None = None

    def __iter__(self) -> Iterator[Frame]:
        return self._pull()

    def _pull(self) -> Iterator[Frame]:
        while self.pending is not None:
            frame, self.pending = self.pending, None
            yield frame


class LiveAnalyzer:
    """Per-session tracker and smoother state around the shared recognizer: the pipeline of
    ``emotrace analyze`` with the same options, fed one frame at a time."""

    def __init__(
        self, recognizer: EmotionRecognizer, options: PipelineOptions, name: str = "browser"
    ) -> None:
        self._slot = _FrameSlot(name)
        self._results = open_pipeline(self._slot, recognizer, options)

    def analyze(self, index: int, time_s: float, image: np.ndarray) -> FrameResult:
        """Run the pipeline on one frame (call from the inference thread only).

        :class:`SessionError` once :meth:`close` has run: a StopIteration must never reach the
        executor's future, which it cannot complete (asyncio: "StopIteration interacts badly
        with generators"), leaving the socket that awaits it hanging."""
        self._slot.pending = Frame(index, time_s, image)
        try:
            return next(self._results)
        except StopIteration:
            raise SessionError("this session's analysis has ended") from None

    def close(self) -> None:
        """Release the pipeline generator."""
        close = getattr(self._results, "close", None)  # process() is a generator
        if close is not None:
            close()


def default_workers() -> int:
    """One inference thread per core the process may use, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


class _ThreadDetectors:
    """One face detector per inference thread, built on the thread's first call."""

    def __init__(self, make_detector: Callable[[], FaceDetector]) -> None:
        self._make = make_detector
        self._local = threading.local()

    def mine(self) -> FaceDetector:
        detector: FaceDetector | None = getattr(self._local, "detector", None)
        if detector is None:
            detector = self._local.detector = self._make()
        return detector


class _ThreadRecognizers:
    """One :class:`EmotionRecognizer` per inference thread: its own detector, the shared
    classifier (and crowd switch). A stand-in for a recognizer in the pipeline: each attribute
    is looked up on the calling thread's own one, so a session's pipeline may run on any worker
    thread."""

    def __init__(
        self, classifier: Any, detectors: _ThreadDetectors, crowd: CrowdSwitch | None = None
    ) -> None:
        self._classifier = classifier
        self._detectors = detectors
        self._crowd = crowd
        self._local = threading.local()

    def mine(self) -> EmotionRecognizer:
        """The calling thread's recognizer, built on its first call."""
        recognizer: EmotionRecognizer | None = getattr(self._local, "recognizer", None)
        if recognizer is None:
            recognizer = EmotionRecognizer(
                self._classifier, self._detectors.mine(), crowd=self._crowd
            )
            self._local.recognizer = recognizer
        return recognizer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.mine(), name)


class Engine:
    """The shared recognizer, its description, and the inference threads.

    ``options``: the model, detector, tracking and smoothing, as ``emotrace analyze`` takes them
    (``options.threads``: onnxruntime and OpenCV threads inside each worker; 1 keeps one frame
    on one core); ``workers``: inference threads (default: :func:`default_workers`); ``crowd``:
    live sessions classify crowded frames with a cheaper model (``emotrace serve`` passes
    :class:`CrowdOptions`; ``None``: never; uploads and file sessions never switch).
    """

    def __init__(
        self,
        options: PipelineOptions | None = None,
        workers: int | None = None,
        crowd: CrowdOptions | None = None,
        file_model: str | Path | None = None,
    ) -> None:
        import cv2

        options = options or PipelineOptions()
        if workers is not None and not 1 <= workers <= 64:
            raise ConfigError(f"workers must be between 1 and 64, got {workers}")
        self.options = options
        # Built here (not lazily) so a bad model or detector fails at start-up, not mid-session.
        self.recognizer = options.recognizer()
        cv2.setNumThreads(options.threads)
        detectors = _ThreadDetectors(options.detector.build)
        self._recognizers = _ThreadRecognizers(self.recognizer.classifier, detectors)
        self.crowd = crowd or CrowdOptions(above=0)
        self.crowd_switch = self.crowd.switch(options.model, options.threads)
        self._live_recognizers = _ThreadRecognizers(
            self.recognizer.classifier, detectors, self.crowd_switch
        )
        spec = self.recognizer.classifier.spec
        self.model_info = ModelInfo.from_model(options.model, name=spec.name, version=spec.version)
        # Uploaded videos are recordings: analysed with ``file_model`` (``serve`` gives
        # ``accurate``); ``None``: the live model. A missing model fails now, at start-up; the
        # file is loaded with the first upload, so that starting stays quick.
        self.file_options = options.replace(model=file_model or options.model)
        self._file_lock = threading.Lock()
        self._file_classifier: EmotionClassifier | None = None
        self._file_model_info: ModelInfo | None = None
        if str(self.file_options.model) == str(options.model):
            self._file_classifier, self._file_model_info = (
                self.recognizer.classifier,
                self.model_info,
            )
        else:
            check_model_exists(self.file_options.model)
        self.detector_name = options.detector.detector
        self.workers = workers or default_workers()
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="emotrace-infer"
        )

    @property
    def classes(self) -> tuple[str, ...]:
        """The model's class names, in probability order."""
        return self.recognizer.classifier.classes

    def _file_model(self) -> tuple[EmotionClassifier, ModelInfo]:
        with self._file_lock:
            if self._file_classifier is None or self._file_model_info is None:
                classifier = EmotionClassifier(self.file_options.model, self.options.threads)
                if classifier.classes != self.classes:
                    raise ConfigError(
                        f"the file model {self.file_options.model} has classes "
                        f"{list(classifier.classes)}, not the live model's {list(self.classes)}"
                    )
                spec = classifier.spec
                self._file_model_info = ModelInfo.from_model(
                    self.file_options.model, name=spec.name, version=spec.version
                )
                self._file_classifier = classifier
            return self._file_classifier, self._file_model_info

    @property
    def file_classifier(self) -> EmotionClassifier:
        """The model uploaded videos are analysed with (loaded on first use)."""
        return self._file_model()[0]

    @property
    def file_model_info(self) -> ModelInfo:
        """What file sessions record about their model (name, version, sha256)."""
        return self._file_model()[1]

    def file_recognizer(self) -> EmotionRecognizer:
        """A recognizer for an uploaded video: the file model, and a detector of its own (to be
        used on one thread)."""
        return EmotionRecognizer(self.file_classifier, self.file_options.detector.build())

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on an inference thread; waits without blocking the loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def recognize(self, data: bytes) -> tuple[FaceEmotions, np.ndarray]:
        """Decode an upload and find its faces (inference thread)."""
        image = decode_image(data)
        return self._recognizers.mine().recognize(image), image

    def analyzer(self, name: str) -> LiveAnalyzer:
        """Fresh per-session pipeline state (its frames may run on any inference thread, one at
        a time: each uses that thread's detector)."""
        # Duck-typed: the stand-in answers every attribute with the thread's own recognizer's.
        return LiveAnalyzer(cast(EmotionRecognizer, self._live_recognizers), self.options, name)

    def close(self) -> None:
        """Stop the inference threads after the queued work."""
        self._executor.shutdown(wait=True)
