"""tvmx: ONNX to bare-metal RISC-V (+ RoCC accelerator) compiler driver built on Apache TVM."""

__version__ = "0.1.0"
