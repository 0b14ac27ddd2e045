"""Export: ONNX files checked against onnxruntime."""

from gentorch.export.onnx import export_onnx, run_onnx, verify_onnx

__all__ = ["export_onnx", "run_onnx", "verify_onnx"]
