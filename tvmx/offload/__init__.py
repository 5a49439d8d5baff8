"""Offloading quantized layers to an accelerator: QDQ pattern matching in Relax, the offload report,
and the kernels (TIR calling the accelerator's header) that replace the matched layers."""
