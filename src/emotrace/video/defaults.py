"""Every default of a video analysis, written once; imports nothing (the CLI's ``--help`` reads
these, and the tracker, the smoother, the pipeline and :class:`~emotrace.video.PipelineOptions`
take their defaults from here)."""

#: Run the detector on every N-th frame and track faces in between (``--detect-every``).
DEFAULT_DETECT_EVERY = 2
#: Seconds the smoother averages (``--smooth-window``); the same at any frame rate.
DEFAULT_SMOOTH_WINDOW_S = 0.4
#: A face unseen this long gets a new track id (``--max-age``).
DEFAULT_MAX_AGE_S = 1.0
#: Lead another class needs before the shown label changes (``--hysteresis``).
DEFAULT_HYSTERESIS = 0.1
SMOOTH_METHODS = ("ema", "window")
#: Live views classify frames with more faces than this with the ``fast`` model
#: (``--crowd-faces``; measured with ``benchmarks/bench_crowd.py``, see docs/model_card.md).
DEFAULT_CROWD_FACES = 5
#: The model they switch to (``--crowd-model``).
DEFAULT_CROWD_MODEL = "fast"
#: Recorded videos, where the detector and decoding cost more than the classifier: the web app's
#: file sessions (``serve --file-model``) and ``batch`` (``--model``) use the ensemble.
DEFAULT_FILE_MODEL = "accurate"
