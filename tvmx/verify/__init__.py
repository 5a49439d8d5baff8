"""Checking a compiled model against onnxruntime."""
