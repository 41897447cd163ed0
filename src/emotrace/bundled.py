"""The models that ship inside the package, by the names users give them (``--model NAME``).

Imports nothing, so that ``emotrace --help`` can list them without loading OpenCV or
onnxruntime; :mod:`emotrace.runtime.loading` finds and loads the files.
"""

DEFAULT_MODEL_FILE = "emotrace_default.onnx"
#: File name by model name (docs/model_card.md has their figures): ``default`` (the float twin
#: of ``default-int8``, which is about 2x faster); ``accurate``, an int8 ensemble for recorded
#: sessions and archives, where the detector and decoding cost more than the classifier;
#: ``fast``, an int8 model at 64 px for live views of many faces and small CPUs.
BUNDLED_MODELS = {
    "default": DEFAULT_MODEL_FILE,
    "default-int8": "emotrace_default_int8.onnx",
    "accurate": "emotrace_accurate.onnx",
    "fast": "emotrace_fast.onnx",
}
#: What ``--model`` help texts list.
MODEL_CHOICES_HELP = ", ".join(BUNDLED_MODELS) + ", an .onnx file or a run folder"
