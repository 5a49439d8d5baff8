"""Average pooling and spatial means that add their terms in onnxruntime's order.

A float sum depends on its order, and a QDQ graph quantizes the mean right after: where the exact
mean is a tie (k + 0.5 quantization steps, frequent for 2x2 windows), the rounding error decides
the int8 value, and one step here becomes tens at a deep network's output. TVM's TOPI pools add
each window row by row; onnxruntime's CPU kernels (MLAS, as measured on x86) add each window's
columns top to bottom and then the column sums left to right, and a global pool (or a window that
is the whole unpadded input) in four interleaved lanes, reduced as (l0 + l2) + (l1 + l3), then the
tail. These legalizations write exactly those sums (unrolled: windows are small), so QDQ models
stay bit-exact with the graph onnxruntime runs; other cases keep TVM's own legalization.
"""

from __future__ import annotations

from typing import Any

MAX_TERMS = 256  # larger windows keep TOPI's loop: an unrolled sum that long is no kernel to keep


def _ints(values: Any) -> list[int]:
    return [int(v) for v in values]


def _window_sum_columns_first(terms: list[list[Any]]) -> Any:
    """terms[h][w]: each column top to bottom, then the column sums left to right."""
    columns = []
    for w in range(len(terms[0])):
        col = terms[0][w]
        for h in range(1, len(terms)):
            col = col + terms[h][w]
        columns.append(col)
    total = columns[0]
    for col in columns[1:]:
        total = total + col
    return total


def _sum_in_lanes(terms: list[Any]) -> Any:
    """Four interleaved partial sums over the first multiple of four, (l0 + l2) + (l1 + l3), then
    the rest in order; zero-initialised lanes as MLAS keeps them."""
    from tvm import tirx

    body = len(terms) // 4 * 4
    zero = tirx.const(0.0, terms[0].dtype)
    lanes = [zero] * 4
    for i in range(body):
        lanes[i % 4] = lanes[i % 4] + terms[i]
    total = (lanes[0] + lanes[2]) + (lanes[1] + lanes[3]) if body else zero
    for term in terms[body:]:
        total = total + term
    return total


def legalize_avg_pool2d(bb: Any, call: Any) -> Any:
    """relax.nn.avg_pool2d (NCHW, no dilation, floor mode, float32) summed as onnxruntime does."""
    from tvm import relax

    attrs = call.attrs
    x_ty = call.args[0].ty
    default = relax.transform.legalize_ops.nn._nn_avg_pool2d
    if (str(attrs.layout) != "NCHW" or str(attrs.out_layout) != "NCHW" or bool(attrs.ceil_mode)
            or any(d != 1 for d in _ints(attrs.dilation)) or str(x_ty.dtype) != "float32"):
        return default(bb, call)
    kh, kw = _ints(attrs.pool_size)
    if kh * kw > MAX_TERMS:
        return default(bb, call)
    _, _, height, width = _ints(x_ty.shape)
    top, left, bottom, right = _ints(attrs.padding)
    whole = (kh, kw) == (height, width) and (top, left, bottom, right) == (0, 0, 0, 0)
    return bb.call_te(_avg_pool_te, call.args[0], (kh, kw), tuple(_ints(attrs.strides)), (top, left, bottom, right),
                      bool(attrs.count_include_pad), whole, primfunc_name_hint="avg_pool2d")


def _avg_pool_te(x: Any, kernel: tuple[int, int], strides: tuple[int, int], padding: tuple[int, int, int, int],
                 include_pad: bool, whole: bool) -> Any:
    from tvm import te, tirx

    n, c, height, width = (int(d) for d in x.shape)
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, strides, padding
    out_h, out_w = (height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1

    def compute(b: Any, ch: Any, i: Any, j: Any) -> Any:
        def term(r: int, q: int) -> Any:
            h, w = i * sh - top + r, j * sw - left + q
            inside = tirx.all(h >= 0, h < height, w >= 0, w < width)
            return tirx.if_then_else(inside, x[b, ch, h, w], tirx.const(0.0, x.dtype))  # adding 0 is exact

        if whole:
            total = _sum_in_lanes([x[b, ch, r, q] for r in range(kh) for q in range(kw)])
            return total / tirx.const(float(kh * kw), x.dtype)
        total = _window_sum_columns_first([[term(r, q) for q in range(kw)] for r in range(kh)])
        if include_pad:
            count: Any = tirx.const(kh * kw, "int32")
        else:
            rows = tirx.min(i * sh - top + kh, height) - tirx.max(i * sh - top, 0)
            cols = tirx.min(j * sw - left + kw, width) - tirx.max(j * sw - left, 0)
            count = rows * cols
        return total / tirx.Cast(x.dtype, count)

    return te.compute((n, c, out_h, out_w), compute, name="pool_avg")


def legalize_mean(bb: Any, call: Any) -> Any:
    """relax.mean over the two spatial axes of an NCHW float32 tensor (GlobalAveragePool) in
    onnxruntime's four lanes; an integer mean in its own type; any other mean as TVM legalizes it."""
    from tvm import relax

    x_ty = call.args[0].ty
    default = relax.transform.legalize_ops.statistical._mean
    dtype = str(x_ty.dtype)
    if not dtype.startswith("float"):
        # TOPI divides an integer sum by an int64 count: an int64 kernel for an int32 tensor.
        return bb.call_te(_integer_mean_te, call.args[0], call.attrs.axis, bool(call.attrs.keepdims),
                          primfunc_name_hint="mean")
    shape = _ints(x_ty.shape) if x_ty.shape is not None else []
    axes = sorted(a % len(shape) for a in _ints(call.attrs.axis)) if shape and call.attrs.axis is not None else []
    if len(shape) != 4 or axes != [2, 3] or dtype != "float32" or shape[2] * shape[3] > MAX_TERMS:
        return default(bb, call)
    return bb.call_te(_spatial_mean_te, call.args[0], bool(call.attrs.keepdims), primfunc_name_hint="mean")


def _integer_mean_te(x: Any, axis: Any, keepdims: bool) -> Any:
    """The sum divided by the count in the input's own type, truncating as onnxruntime does."""
    from tvm import te, tirx, topi

    axes = list(range(len(x.shape))) if axis is None else [int(a) % len(x.shape) for a in axis]
    count = 1
    for a in axes:
        count *= int(x.shape[a])
    total = topi.sum(x, axes, keepdims)
    return te.compute(total.shape, lambda *i: tirx.truncdiv(total(*i), tirx.const(count, x.dtype)), name="mean")


def _spatial_mean_te(x: Any, keepdims: bool) -> Any:
    from tvm import te, tirx

    n, c, height, width = (int(d) for d in x.shape)

    def mean(b: Any, ch: Any) -> Any:
        total = _sum_in_lanes([x[b, ch, r, q] for r in range(height) for q in range(width)])
        return total / tirx.const(float(height * width), x.dtype)

    if keepdims:
        return te.compute((n, c, 1, 1), lambda b, ch, _i, _j: mean(b, ch), name="mean")
    return te.compute((n, c), mean, name="mean")


def legalize_map() -> dict[str, Any]:
    return {"relax.nn.avg_pool2d": legalize_avg_pool2d, "relax.mean": legalize_mean}
