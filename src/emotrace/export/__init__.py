"""Export trained checkpoints to self-describing ONNX files (fp32, or int8 quantised)."""

from emotrace.export.float_twin import write_float_twin
from emotrace.export.onnx_export import ExportResult, export_onnx

__all__ = ["ExportResult", "export_onnx", "write_float_twin"]
