"""One run of the pipeline over a source: read, analyse, hand each frame over, write, finish.

    >>> options = PipelineOptions()
    >>> recognizer = options.recognizer()
    >>> with open_source("session.mp4") as source:
    ...     outputs = VideoOutputs(Path("out"), recognizer.classifier.classes, source.info)
    ...     run = analyze_source(source, options, recognizer, outputs=outputs)
    >>> run.summary["frames"], run.stop

``emotrace analyze``, ``emotrace live``, the batch workers and the server's file sessions all run
through :func:`analyze_source`; what differs between them is only what they do with each frame
(``on_frame``: a progress bar, a window, raw faces for a session) and which sinks they pass.
The server's live sessions, fed one frame per WebSocket message, build the same generator with
:func:`open_pipeline`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from emotrace._interrupts import acknowledge_interrupt, hold_interrupt, raise_if_interrupted
from emotrace.video.options import PipelineOptions
from emotrace.video.pipeline import FpsMeter, FrameResult, process

if TYPE_CHECKING:
    from emotrace.runtime.recognizer import EmotionRecognizer
    from emotrace.sessions.recorder import SessionRecorder
    from emotrace.video.frames import FrameSource
    from emotrace.video.sinks import VideoOutputs

#: ``on_frame(result, overlay)``: called after the frame is recorded; return ``False`` to stop
#: (a window's ``q``). ``overlay`` is the annotated image when one was drawn.
FrameCallback = Callable[[FrameResult, "np.ndarray | None"], "bool | None"]


def open_pipeline(
    source: FrameSource, recognizer: EmotionRecognizer, options: PipelineOptions
) -> Generator[FrameResult, None, None]:
    """The pipeline generator over ``source`` for ``options``, with a fresh tracker and
    smoother (track ids start at 1)."""
    return process(
        source,
        recognizer,
        detect_every=options.detect_every,
        tracker=options.tracker(),
        smoother=options.smoother(),
        smooth=options.smooth,
        max_frames=options.max_frames,
    )


@dataclass
class SourceRun:
    """How a run ended. ``stop``: ``end``, ``stalled``, ``closed``, ``key`` (``on_frame`` said
    stop), ``interrupted`` or ``max-frames``; ``error``: what ended it otherwise (only returned
    with ``errors="return"``); ``summary``: the outputs' ``summary.json`` when outputs were
    given."""

    frames: int = 0
    stop: str = "end"
    error: BaseException | None = None
    summary: dict[str, Any] | None = None


def analyze_source(
    source: FrameSource,
    options: PipelineOptions,
    recognizer: EmotionRecognizer,
    *,
    outputs: VideoOutputs | None = None,
    recorder: SessionRecorder | None = None,
    overlay: bool = False,
    on_frame: FrameCallback | None = None,
    interrupt_ends_run: bool = False,
    errors: Literal["raise", "return"] = "raise",
) -> SourceRun:
    """Run the pipeline over ``source`` into ``outputs`` (records, annotated video,
    ``summary.json``) and/or a session ``recorder``, frame by frame.

    Each frame's records are written whole: Ctrl+C waits for them (see
    :mod:`emotrace._interrupts`). Whatever ends the run, every processed frame is kept, the
    recorder is closed (``interrupted`` after an error, else ``complete``), the outputs' summary
    says why, and ``source`` is closed. ``overlay`` draws the annotated image (for the outputs'
    video and ``on_frame``). ``interrupt_ends_run``: Ctrl+C is the normal way to stop (``live``
    without a window), not an error. ``errors="return"``: an error of the source or the pipeline
    is returned in :attr:`SourceRun.error` instead of raised (a batch goes on with the next
    video); Ctrl+C is always raised.
    """
    from emotrace.annotate import draw_overlay

    run = SourceRun()
    meter = FpsMeter()
    results = open_pipeline(source, recognizer, options)
    stop = ""
    try:
        for result in results:
            raise_if_interrupted()  # a Ctrl+C swallowed on the way stops before the next frame
            meter.tick()
            canvas = None
            if overlay:
                t0 = time.perf_counter()
                canvas = draw_overlay(result.image, result.faces, meter.fps)
                if outputs is not None:
                    outputs.stats.add_time("overlay", time.perf_counter() - t0)
            with hold_interrupt():
                if outputs is not None:
                    outputs.write(result, canvas)
                if recorder is not None:
                    recorder.record(result.index, result.time_s, result.raw)
            run.frames += 1
            if on_frame is not None and on_frame(result, canvas) is False:
                stop = "key"
                break
    except KeyboardInterrupt as exc:
        if not interrupt_ends_run:
            run.error = exc
            raise
        stop = "interrupted"
        acknowledge_interrupt()
    except Exception as exc:
        run.error = exc
        if errors == "raise":
            raise
    except BaseException as exc:
        run.error = exc
        raise
    finally:
        results.close()  # closes the source too, once the generator has started
        if not stop:
            stop = source.stop_reason
            if options.max_frames and run.frames >= options.max_frames:
                stop = "max-frames"
        source.close()  # safe twice; needed when the run failed before its first frame
        run.stop = stop
        if recorder is not None:
            recorder.close("interrupted" if run.error is not None else "complete")
        if outputs is not None:
            run.summary = finish_outputs(outputs, source, stop, run.error)
    return run


def finish_outputs(
    outputs: VideoOutputs, source: FrameSource, stop: str, error: BaseException | None
) -> dict[str, Any]:
    """Close ``outputs`` with the source's own figures; the ``summary.json`` written."""
    frames = max(outputs.stats.frames, 1)
    outputs.extra = {
        "capture_thread_ms_per_frame": round(1000 * source.capture_seconds / frames, 3),
        "dropped_frames": source.dropped,
        "reconnects": source.reconnects,
        "skipped_images": source.skipped,
    }
    outputs.stop_reason = stop
    return outputs.close(error)
