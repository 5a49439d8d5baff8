"""TIR kernels for offloaded layers, and the tensor intrinsics that map them onto the accelerator.

Each offloaded layer first becomes a plain TIR kernel with the layer's exact int8 semantics (bias
seeds an int32 accumulator, requantization rounds half to even and saturates, optional ReLU). It
is tensorized with a TensorIntrin whose description is that same loop nest and whose
implementation is one call of the header function the target YAML declares for the op (through a
generated C wrapper, so TVM's prototype never clashes with the header's); the tune stage records it.

TVM 0.27 cannot blockize a reduction block together with its requantization epilogue ("No
reduction iter vars allowed for the outer loops when blockize multiple blocks"), so the kernel
computes each output element in one block with the reduction as a serial loop inside it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from tvmx.offload.layers import QAdd, QLayer

ACT = {False: 0, True: 1}  # the accelerator call's activation argument: none, ReLU


def wrapper_name(function: str) -> str:
    return f"tvmx_{function}"


@dataclass(frozen=True)
class KernelSource:
    """TVMScript for one offloaded layer: its buffers, the computation, the accelerator call."""

    params: list[tuple[str, tuple[int, ...], str]]  # (name, shape, dtype); the output last
    reads: str  # region list of the whole computation
    loops: str  # the per-output-element block, indented for the root block
    function: str  # the header function the intrinsic calls (through its C wrapper)
    sizes: dict[str, int]  # the call's leading integer arguments, by name (the tune stage reads them)
    rest: str  # the call's other arguments: scales, activation, buffer pointers

    @property
    def call(self) -> str:
        """The call_extern expression of the implementation."""
        sizes = ", ".join(f"T.int64({v})" for v in self.sizes.values())
        return f'T.call_extern("int32", "{wrapper_name(self.function)}", {sizes}, {self.rest})'

    def _header(self, with_acc: bool) -> str:
        params = [f'{n}: T.Buffer({tuple(s)}, "{d}")' for n, s, d in self.params]
        out_shape = self.params[-1][1]
        if with_acc:
            params.append(f'acc: T.Buffer({tuple(out_shape)}, "int32")')
        return f"@T.prim_func(s_tir=True)\ndef main({', '.join(params)}):\n"

    def _root(self, body: str) -> str:
        out, shape, _ = self.params[-1]
        region = ", ".join(f"0:{d}" for d in shape)
        return (f'    with T.sblock("root"):\n        T.reads({self.reads})\n'
                f"        T.writes({out}[{region}], acc[{region}])\n{body}")

    def kernel(self) -> Any:
        shape = self.params[-1][1]
        text = (self._header(False) + '    T.func_attr({"tirx.noalias": True})\n'
                f'    acc = T.alloc_buffer({tuple(shape)}, "int32")\n' + self._root(self.loops))
        return _parse(text)

    def desc(self) -> Any:
        return _parse(self._header(True) + self._root(self.loops))

    def impl(self) -> Any:
        return _parse(self._header(True) + self._root(f"        T.evaluate({self.call})\n"))

    def direct(self) -> Any:
        """The call without the intrinsic machinery (fallback when tensorize does not match)."""
        out, shape, _ = self.params[-1]
        region = ", ".join(f"0:{d}" for d in shape)
        return _parse(self._header(False) + f'    with T.sblock("root"):\n        T.reads({self.reads})\n'
                      f"        T.writes({out}[{region}])\n        T.evaluate({self.call})\n")

    def register(self) -> str:
        """Register the TensorIntrin (named by a hash of its text); returns its name."""
        from tvm.s_tir import TensorIntrin

        name = "tvmx_" + hashlib.sha256((self.loops + self.call).encode()).hexdigest()[:16]
        TensorIntrin.register(name, self.desc(), self.impl(), override=True)
        return name


def _parse(text: str) -> Any:
    import tvm

    return tvm.script.from_source(text)


def _requant(acc: str, scale: float, relu: bool) -> str:
    """The accelerator's store of an accumulator: float32 product, round half to even, saturate to int8,
    optional ReLU."""
    low = 0.0 if relu else -128.0
    return (f'T.Cast("int8", T.max(T.min(T.nearbyint(T.Cast("float32", {acc}) * T.float32({scale!r})), '
            f"T.float32(127.0)), T.float32({low})))")


def _grid(block: str, dims: list[tuple[str, int]]) -> tuple[str, dict[str, str]]:
    """Loops and block axes over the dimensions wider than 1 (blockize drops unit axes on one side
    only, after which the kernel no longer matches its description); unit dimensions index 0."""
    wide = [(name, extent) for name, extent in dims if extent > 1] or [dims[-1]]
    index = {name: f"v{name}" if (name, extent) in wide else "0" for name, extent in dims}
    loop_vars = ", ".join(name for name, _ in wide)
    head = (f"        for {loop_vars} in T.grid({', '.join(str(e) for _, e in wide)}):\n"
            f'            with T.sblock("{block}"):\n'
            f'                {", ".join(f"v{n}" for n, _ in wide)} = T.axis.remap("{"S" * len(wide)}", '
            f"[{loop_vars}])\n")
    return head, index


def matmul_source(layer: QLayer, function: str) -> KernelSource:
    """x [M, K] int8 · w [K, N] int8 + bias [N] int32 -> out [M, N] int8."""
    k, n = layer.weight.shape
    m = int(np.prod(layer.x_shape[:-1]))
    head, ix = _grid("accel_matmul", [("i", m), ("j", n)])
    vi, vj = ix["i"], ix["j"]
    r = "r" if k > 1 else "0"  # no unit loops (see _grid)
    loops = (head +
             f"                T.reads(x[{vi}, 0:{k}], w[0:{k}, {vj}], bias[{vj}])\n"
             f"                T.writes(out[{vi}, {vj}], acc[{vi}, {vj}])\n"
             f"                acc[{vi}, {vj}] = bias[{vj}]\n"
             + (f"                for r in range({k}):\n    " if k > 1 else "")
             + f"                acc[{vi}, {vj}] = acc[{vi}, {vj}] + "
             f'T.Cast("int32", x[{vi}, {r}]) * T.Cast("int32", w[{r}, {vj}])\n'
             f"                out[{vi}, {vj}] = {_requant(f'acc[{vi}, {vj}]', layer.acc_scale, layer.relu)}\n")
    rest = (f"T.float32({layer.acc_scale!r}), {ACT[layer.relu]}, "
            'x.access_ptr("r"), w.access_ptr("r"), bias.access_ptr("r"), out.access_ptr("w")')
    params = [("x", (m, k), "int8"), ("w", (k, n), "int8"), ("bias", (n,), "int32"), ("out", (m, n), "int8")]
    return KernelSource(params, f"x[0:{m}, 0:{k}], w[0:{k}, 0:{n}], bias[0:{n}]", loops, function,
                        call_sizes(layer), rest)


def _lin(outer: str, extent: int, inner: str) -> str:
    """outer * extent + inner, without the terms TVMScript would simplify away on one side only."""
    if outer == "0":
        return inner
    return f"{outer} * {extent}" if inner == "0" else f"{outer} * {extent} + {inner}"


def _bounds(index: str, low: int, high: int, extent: int) -> list[str]:
    """The checks 0 <= index < extent that can fail for index values in [low, high]. Only those:
    TVMScript drops provably true ones from the description but not from the blockized kernel,
    which would then not match."""
    return ([f"0 <= {index}"] if low < 0 else []) + ([f"{index} < {extent}"] if high >= extent else [])


def conv2d_source(layer: QLayer, function: str) -> KernelSource:
    """NHWC int8 in and out; padding reads zeros (zero point 0). The weights are S blocks [KH, KW,
    cin, cout] (packed groups, see layers.pack_groups): block g reads input channels g*cin.. and
    writes output channels g*cout... With a fused max pool, each output element is the max over its
    window of requantized conv outputs; window positions outside the conv output are skipped."""
    batch, _, h, w = layer.x_shape
    _, c_out, oh, ow = layer.out_shape
    _, _, ph, pw = layer.final_shape
    blocks, kh, kw, cin, cout = layer.weight.shape
    s, p = layer.strides[0], layer.padding[0]
    pool = layer.pool
    head, ix = _grid("accel_conv2d", [("b", batch), ("oy", ph), ("ox", pw), ("g", blocks), ("oc", cout)])
    vn, vy, vx, vg, vc = ix["b"], ix["oy"], ix["ox"], ix["g"], ix["oc"]
    at = f"{vn}, {vy}, {vx}, {_lin(vg, cout, vc)}"
    # unit axes get no loop (same reason as _grid)
    red = [(name, extent) for name, extent in (("ky", kh), ("kx", kw), ("c", cin)) if extent > 1] or [("c", cin)]
    kv = {name: name if (name, extent) in red else "0" for name, extent in (("ky", kh), ("kx", kw), ("c", cin))}
    ind = "                "
    if pool is None:
        cy, cx, cy_range, cx_range = vy, vx, (0, oh - 1), (0, ow - 1)
    else:
        k, ps, pp = pool.size, pool.stride, pool.pad
        win = "wy, wx" if k > 1 else ""
        wy, wx = ("wy", "wx") if k > 1 else ("0", "0")
        cy, cx = f"({vy} * {ps} + {wy} - {pp})", f"({vx} * {ps} + {wx} - {pp})"
        cy_range, cx_range = (-pp, (ph - 1) * ps + k - 1 - pp), (-pp, (pw - 1) * ps + k - 1 - pp)
    iy, jx = f"{cy} * {s} + {kv['ky']} - {p}", f"{cx} * {s} + {kv['kx']} - {p}"
    product = (f'T.Cast("int32", x[{vn}, {iy}, {jx}, {_lin(vg, cin, kv["c"])}]) * '
               f'T.Cast("int32", w[{vg}, {kv["ky"]}, {kv["kx"]}, {kv["c"]}, {vc}])')
    # A select, not an if: the tensorize comparator has no rule for IfThenElse statements.
    checks = (_bounds(iy, cy_range[0] * s - p, cy_range[1] * s + kh - 1 - p, h)
              + _bounds(jx, cx_range[0] * s - p, cx_range[1] * s + kw - 1 - p, w))
    if checks:
        product = f"T.if_then_else({' and '.join(checks)}, {product}, 0)"
    x_channels = f"{_lin(vg, cin, '0')}:{_lin(vg, cin, '0')} + {cin}" if vg != "0" else f"0:{cin}"
    reduce = (f"acc[{at}] = bias[{_lin(vg, cout, vc)}]\n"
              f"for {', '.join(n for n, _ in red)} in T.grid({', '.join(str(e) for _, e in red)}):\n"
              f"    acc[{at}] = acc[{at}] + {product}\n")
    requant = _requant(f"acc[{at}]", layer.acc_scale, layer.relu)
    if pool is None:
        body = reduce + f"out[{at}] = {requant}\n"
    else:
        valid = _bounds(cy, *cy_range, oh) + _bounds(cx, *cx_range, ow)
        value = f"T.if_then_else({' and '.join(valid)}, {requant}, T.int8(-128))" if valid else requant
        inner = reduce + f"out[{at}] = T.max(out[{at}], {value})\n"
        if win:
            inner = f"for {win} in T.grid({k}, {k}):\n" + "".join(f"    {line}\n" for line in inner.splitlines())
        body = f"out[{at}] = T.int8(-128)\n" + inner
    loops = (head +
             f"{ind}T.reads(x[{vn}, 0:{h}, 0:{w}, {x_channels}], w[{vg}, 0:{kh}, 0:{kw}, 0:{cin}, {vc}], "
             f"bias[{_lin(vg, cout, vc)}])\n"
             f"{ind}T.writes(out[{at}], acc[{at}])\n"
             + "".join(f"{ind}{line}\n" for line in body.splitlines()))
    rest = (f'T.float32({layer.acc_scale!r}), {ACT[layer.relu]}, x.access_ptr("r"), w.access_ptr("r"), '
            'bias.access_ptr("r"), out.access_ptr("w")')
    params = [("x", (batch, h, w, blocks * cin), "int8"), ("w", tuple(layer.weight.shape), "int8"),
              ("bias", (c_out,), "int32"), ("out", (batch, ph, pw, c_out), "int8")]
    reads = (f"x[0:{batch}, 0:{h}, 0:{w}, 0:{blocks * cin}], w[0:{blocks}, 0:{kh}, 0:{kw}, 0:{cin}, 0:{cout}], "
             f"bias[0:{c_out}]")
    return KernelSource(params, reads, loops, function, call_sizes(layer), rest)


def call_sizes(layer: QLayer) -> dict[str, int]:
    """The integer arguments of the layer's accelerator call, by name."""
    if layer.op == "matmul":
        k, n = layer.weight.shape
        return {"M": int(np.prod(layer.x_shape[:-1])), "N": int(n), "K": int(k)}
    batch, _, h, w = layer.x_shape
    _, _, oh, ow = layer.out_shape
    blocks, kh, kw, cin, cout = (int(d) for d in layer.weight.shape)
    pool = layer.pool
    return {"batch": batch, "in_h": h, "in_w": w, "groups": blocks, "in_c": cin, "out_c": cout, "out_h": oh,
            "out_w": ow, "stride": layer.strides[0], "pad": layer.padding[0], "kh": kh, "kw": kw,
            "pool_size": pool.size if pool else 0, "pool_stride": pool.stride if pool else 0,
            "pool_pad": pool.pad if pool else 0}


ADD_OPERANDS = ("a", "b", "d")  # the inputs of a residual add of two or three tensors, in order


def add_source(add: QAdd, function: str) -> KernelSource:
    """Two or three int8 tensors -> out int8 of the same shape: each scaled into the int32
    accumulator, summed, requantized."""
    shape, names = add.shape, ADD_OPERANDS[:add.arity]
    head, ix = _grid(f"accel_{add.op}", [(f"d{i}", extent) for i, extent in enumerate(shape)])
    at = ", ".join(ix[f"d{i}"] for i in range(len(shape)))

    def scaled(buf: str, scale: float) -> str:  # scaled load into the accumulator: float32 product, round half to even
        return f'T.Cast("int32", T.nearbyint(T.Cast("float32", {buf}[{at}]) * T.float32({scale!r})))'

    summed = " + ".join(scaled(n, s) for n, s in zip(names, add.in_scales, strict=True))
    loops = (head +
             f"                T.reads({', '.join(f'{n}[{at}]' for n in names)})\n"
             f"                T.writes(out[{at}], acc[{at}])\n"
             f"                acc[{at}] = {summed}\n"
             f"                out[{at}] = {_requant(f'acc[{at}]', add.out_scale, add.relu)}\n")
    scales = ", ".join(f"T.float32({s!r})" for s in (*add.in_scales, add.out_scale))
    pointers = ", ".join(f'{n}.access_ptr("r")' for n in names)
    rest = f'{scales}, {ACT[add.relu]}, {pointers}, out.access_ptr("w")'
    region = ", ".join(f"0:{d}" for d in shape)
    params = [*((n, shape, "int8") for n in names), ("out", shape, "int8")]
    return KernelSource(params, ", ".join(f"{n}[{region}]" for n in names), loops, function,
                        {"n": int(np.prod(shape))}, rest)


def accelerator_kernel(source: KernelSource, name: str, op: str) -> Any:
    """The layer's reference kernel, tensorized at once (later graph passes simplify unit loops away,
    after which it would no longer match the intrinsic's description). Where tensorize does not
    match, the same call without the intrinsic; `tvmx.intrinsic` says which, for schedules.json."""
    from tvm import s_tir

    intrin = source.register()
    try:
        prim = tensorize(source.kernel(), op, intrin)
    except s_tir.ScheduleError as exc:
        prim, intrin = source.direct(), f"none (tensorize did not match: {str(exc).splitlines()[-1][:80]})"
    prim = prim.with_attr("global_symbol", name).with_attr("tvmx.offloaded", op).with_attr("tvmx.intrinsic", intrin)
    return prim.with_attr("tvmx.sizes", source.sizes)


def tensorize(func: Any, op: str, intrin: str) -> Any:
    """Map the kernel's whole loop nest onto the intrinsic: one accelerator call."""
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    sch.tensorize(sch.get_loops(sch.get_sblock(f"accel_{op}"))[0], intrin)
    return sch.mod["main"]


def glue_preamble(header: str) -> list[str]:
    """The first lines of an accelerator's glue file (Accelerator.glue_c): the includes its wrappers need."""
    return ["/* Generated by tvmx: entry points from TVM kernels into the accelerator's header. */",
            "#include <stddef.h>", "#include <stdint.h>", f'#include "{header}"', "",
            "/* (the generated main reads the accelerator's counters around every kernel call: `tvmx run`'s",
            "   profile, run/profile.json) */", ""]


def c_wrapper(function: str, params: str, setup: list[str], call: list[str]) -> list[str]:
    """One C wrapper: int32_t tvmx_<function>(params) { setup; call; return 0; }"""
    signature = [f"int32_t {wrapper_name(function)}("]
    indent = " " * len(signature[0])
    for i, param in enumerate(params.split(", ")):
        text = param + (", " if i < params.count(", ") else ") {")
        if len(signature[-1]) + len(text.rstrip()) > 110:
            signature[-1] = signature[-1].rstrip()
            signature.append(indent)
        signature[-1] += text
    return [*signature, *setup, *call, "  return 0;", "}", ""]
