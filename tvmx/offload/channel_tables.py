"""Per-channel elementwise chains between int8 tensors as one table lookup per element.

onnxruntime's quantizer without its pre-processing keeps a BatchNormalization after a quantized
conv as its own QDQ op, so between two int8 tensors the graph reads

    quantize( [relu(dequantize(quantize(] batch_norm( dequantize(x) ) [)))] )

and the CPU spends tens of float instructions per element on it. The conv's output quantization
sits between the conv and the BatchNormalization, so folding the BatchNormalization into the conv
would change the values; but every op of the chain is elementwise with constants that depend on
the channel at most, so the result depends only on (channel, x): C x 256 values, computed here in
float32 as onnxruntime computes each op. The chain then becomes

    take(table, astype(x, int32) + offset[channel])        (offset = 256 * channel - min(x))

which the CPU does in a few instructions per element, and which transpose sinking can move to
the accelerator's NHWC layout (the offsets are a per-channel constant).

A chain with arithmetic on scalar constants only (attention's scaling of Q.K^T) is one table for
all channels. Chains of ReLUs and requantizations alone are left to int8_tables and to the
accelerator patterns (a ReLU after a conv is free in the accelerator's output store).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tvmx.offload.int8_tables import RANGES
from tvmx.offload.rewrite import bindings, constant_array, op_name, rewrite_main

CHANNEL_AXIS = 1  # NCHW, and [N, C] after a Gemm: the layout the ONNX graph is in
ARITHMETIC = {"relax.add": np.add, "relax.subtract": np.subtract, "relax.multiply": np.multiply,
              "relax.divide": np.divide}


@dataclass(frozen=True)
class _Step:
    """One op of a chain, applied to the [C or 1, 256] float32 values of every (channel, x)."""

    op: str
    consts: tuple[np.ndarray, ...] = ()  # each [C or 1, 1] float32
    swapped: bool = False  # binary op with the constant on the left
    dtype: str = ""  # quantize: its out_dtype

    def apply(self, v: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.op == "relax.nn.relu":
                out = np.maximum(v, np.float32(0))
            elif self.op == "relax.quantize":
                scale, zero = self.consts
                low, high = RANGES[self.dtype]
                out = np.clip(np.rint(v / scale) + zero, low, high)  # as QuantizeLinear
            elif self.op == "relax.dequantize":
                scale, zero = self.consts
                out = (v - zero) * scale  # v and zero are integers: v - zero is exact
            elif self.op == "relax.nn.batch_norm":
                out = _batch_norm(v, *self.consts)
            else:
                fn = ARITHMETIC[self.op]
                out = fn(self.consts[0], v) if self.swapped else fn(v, self.consts[0])
        return np.asarray(out, np.float32)


def _batch_norm(v: np.ndarray, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray,
                eps: np.ndarray) -> np.ndarray:
    """onnxruntime's inference BatchNormalization, to the bit: y = x * s + (beta - mean * s) with
    s = gamma * (1 / sqrt(var + eps)), each in float32 without fused multiply-adds (not the
    (x - mean) / sqrt(var + eps) * gamma + beta that TVM decomposes it into, which differs in the
    last bit on about half of the elements)."""
    scale = gamma * (np.float32(1) / np.sqrt(var + eps))
    return np.asarray(v * scale + (beta - mean * scale), np.float32)


@dataclass(frozen=True)
class _Chain:
    source: Any  # the 8-bit tensor the chain starts from
    steps: tuple[_Step, ...]
    channels: int
    in_dtype: str
    out_dtype: str
    start: Any = None  # the dequantize(source) call
    pool: Any = None  # a max_pool2d on the chain's result, moved before the lookup

    def table(self) -> np.ndarray:
        """[channels, 256]: entry (c, v - min) is the chain's value for x = v in channel c."""
        low, high = RANGES[self.in_dtype]
        v = np.broadcast_to(np.arange(low, high + 1, dtype=np.float32), (self.channels, high - low + 1))
        for step in self.steps:
            v = step.apply(v)
        out: np.ndarray = np.broadcast_to(v, (self.channels, high - low + 1)).astype(self.out_dtype)
        return out


def _constant(expr: Any, values: dict[Any, Any]) -> np.ndarray | None:
    """The float32 value of a constant, also of dequantize(constant) as onnxruntime computes it
    ((int32(q) - zero) * scale along the op's axis)."""
    from tvm import relax

    if isinstance(expr, relax.Var):
        expr = values.get(expr)
    if op_name(expr) == "relax.dequantize":
        parts = [_raw(a, values) for a in expr.args]
        if any(p is None for p in parts) or str(expr.attrs.out_dtype) != "float32":
            return None
        q, scale, zero = (p for p in parts if p is not None)
        if scale.ndim == 1 and q.ndim > 1:  # per-axis scales
            shape = [1] * q.ndim
            shape[int(expr.attrs.axis)] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        out: np.ndarray = (q.astype(np.int64) - zero.astype(np.int64)).astype(np.float32) * scale.astype(np.float32)
        return out
    raw = _raw(expr, values)
    return raw if raw is not None and raw.dtype == np.float32 else None


def _raw(expr: Any, values: dict[Any, Any]) -> np.ndarray | None:
    from tvm import relax

    if isinstance(expr, relax.Var):
        expr = values.get(expr)
    return constant_array(expr)


def _per_channel(arr: np.ndarray | None, rank: int, channels: int) -> np.ndarray | None:
    """`arr` as [channels or 1, 1] if it broadcasts against a rank-`rank` tensor along the channel
    axis only, else None."""
    if arr is None or arr.ndim > rank:
        return None
    full = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
    others = [d for i, d in enumerate(full.shape) if i != CHANNEL_AXIS]
    if any(d != 1 for d in others) or full.shape[CHANNEL_AXIS] not in (1, channels):
        return None
    return full.reshape(-1, 1).astype(np.float32)


def _channel_vector(arr: np.ndarray | None, channels: int) -> np.ndarray | None:
    """A [channels] BatchNormalization parameter as [channels, 1], else None."""
    return arr.reshape(channels, 1).astype(np.float32) if arr is not None and arr.shape == (channels,) else None


def _scalar_pair(call: Any, values: dict[Any, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The scalar scale and zero point of a quantize/dequantize, as [1, 1] float32."""
    scale, zero = _raw(call.args[1], values), _raw(call.args[2], values)
    if scale is None or zero is None or scale.size != 1 or zero.size != 1:
        return None
    return scale.reshape(1, 1).astype(np.float32), zero.reshape(1, 1).astype(np.float32)


class _Planner:
    """Finds the chains of `main`: end var (the last quantize) -> chain."""

    def __init__(self, main: Any) -> None:
        from tvm import relax

        self.values = bindings(main)
        self.uses: Counter[Any] = Counter()
        self.users: dict[Any, list[Any]] = {}
        for var, value in self.values.items():
            for arg in _operands(value):
                self.uses[arg] += 1
                self.users.setdefault(arg, []).append(var)
        out = main.body.body
        for arg in out.fields if isinstance(out, relax.Tuple) else [out]:
            self.uses[arg] += 1  # a model output is used outside any chain

    def plan(self) -> dict[Any, _Chain]:
        """A chain from each user of each dequantize (DenseNet's concatenation feeds its BatchNorm
        and the next concatenation: the BatchNorm's chain is one lookup, the dequantize stays for
        the other)."""
        chains: dict[Any, _Chain] = {}
        for var, value in self.values.items():
            if op_name(value) == "relax.dequantize":
                for first in dict.fromkeys(self.users.get(var, [])):
                    found = self._chain_from(var, value, first)
                    if found is None:
                        continue
                    # the chain from an earlier dequantize also covers the later ones ending where it ends
                    known = chains.get(found[0])
                    if known is None or len(found[1].steps) > len(known.steps):
                        chains[found[0]] = found[1]
        return chains

    def _next(self, var: Any) -> Any:
        """The one user of `var`, or None."""
        return self.users[var][0] if self.uses[var] == 1 and len(self.users.get(var, [])) == 1 else None

    def _chain_from(self, start: Any, dq: Any, first: Any) -> tuple[Any, _Chain] | None:
        source = dq.args[0]
        in_dtype = str(source.ty.dtype)
        pair = _scalar_pair(dq, self.values)
        shape = [int(d) for d in getattr(source.ty, "shape", None) or []]
        if in_dtype not in RANGES or pair is None or len(shape) < 2 or str(dq.attrs.out_dtype) != "float32":
            return None
        channels, rank = shape[CHANNEL_AXIS], len(shape)
        steps = [_Step("relax.dequantize", pair)]
        per_channel, arithmetic, best, cur = False, False, None, start
        user = first
        while user is not None:
            value = self.values[user]
            if [int(d) for d in getattr(user.ty, "shape", None) or []] != shape and op_name(value) != \
                    "relax.nn.batch_norm":
                break
            step, cur = self._step(cur, user, value, rank, channels)
            if step is None:
                break
            steps.append(step)
            per_channel |= any(c.shape[0] > 1 for c in step.consts)
            arithmetic |= step.op in ARITHMETIC or step.op == "relax.nn.batch_norm"
            if step.op == "relax.quantize" and arithmetic:
                best = (cur, _Chain(source, tuple(steps), channels if per_channel else 1, in_dtype, step.dtype, dq))
            user = self._next(cur)
        return self._pooled(*best) if best is not None else None

    def _pooled(self, end: Any, chain: _Chain) -> tuple[Any, _Chain]:
        """quantize(max_pool2d(dequantize(chain))) on the chain's own scale is the lookup of the pooled
        input when every channel's table never decreases (max(T(a), T(b)) = T(max(a, b)); padding
        never wins a max): the pool then runs on the chain's input (in the accelerator's output store when
        that is a conv) and the lookup on a quarter of the elements."""
        dq = self._next(end)
        pool = self._next(dq) if dq is not None else None
        q = self._next(pool) if pool is not None else None
        if q is None or op_name(self.values[dq]) != "relax.dequantize" or op_name(self.values[q]) != "relax.quantize":
            return end, chain
        dq_v, pool_v, q_v = self.values[dq], self.values[pool], self.values[q]
        last = chain.steps[-1].consts
        same = [_scalar_pair(c, self.values) for c in (dq_v, q_v)]
        if (op_name(pool_v) != "relax.nn.max_pool2d" or str(pool_v.attrs.layout) != "NCHW"
                or any(p is None or not (np.array_equal(p[0], last[0]) and np.array_equal(p[1], last[1]))
                       for p in same) or str(q_v.attrs.out_dtype) != chain.out_dtype):
            return end, chain
        if not np.all(np.diff(chain.table().astype(np.int32), axis=1) >= 0):
            return end, chain
        return q, replace(chain, pool=pool_v)

    def _step(self, cur: Any, user: Any, value: Any, rank: int, channels: int) -> tuple[_Step | None, Any]:
        """The step `value` (bound to `user`, reading `cur`) and the var the chain continues from."""
        op = op_name(value)
        if op == "relax.nn.relu":
            return _Step(op), user
        if op in ("relax.quantize", "relax.dequantize"):
            pair = _scalar_pair(value, self.values)
            dtype = str(value.attrs.out_dtype)
            ok = pair is not None and (dtype in RANGES if op == "relax.quantize" else dtype == "float32")
            return (_Step(op, pair, dtype=dtype), user) if ok and pair is not None else (None, cur)
        if op in ARITHMETIC and len(value.args) == 2:
            swapped = value.args[1].same_as(cur)
            other = value.args[0] if swapped else value.args[1]
            const = _per_channel(_constant(other, self.values), rank, channels)
            return (_Step(op, (const,), swapped=swapped), user) if const is not None else (None, cur)
        if op == "relax.nn.batch_norm":
            return self._batch_norm(value, user, channels), self._item0(user)
        return None, cur

    def _batch_norm(self, value: Any, user: Any, channels: int) -> _Step | None:
        attrs = value.attrs
        if int(attrs.axis) != CHANNEL_AXIS or bool(attrs.training) or self._item0(user) is None:
            return None
        params = [_channel_vector(_constant(a, self.values), channels) for a in value.args[1:]]
        if any(p is None for p in params):
            return None
        gamma, beta, mean, var = (p for p in params if p is not None)
        if not bool(attrs.scale):
            gamma = np.ones_like(gamma)
        if not bool(attrs.center):
            beta = np.zeros_like(beta)
        eps = np.full((1, 1), attrs.epsilon, np.float32)
        return _Step("relax.nn.batch_norm", (gamma, beta, mean, var, eps))

    def _item0(self, bn_var: Any) -> Any:
        """The var bound to bn_var[0] if the statistics bn_var[1], bn_var[2] go unused, else None."""
        from tvm import relax

        item0 = None
        for user in self.users.get(bn_var, []):
            value = self.values[user]
            if not isinstance(value, relax.TupleGetItem):
                return None
            if int(value.index) == 0:
                item0 = user
            elif self.uses[user]:
                return None
        return item0


def _operands(value: Any) -> list[Any]:
    from tvm import relax

    if isinstance(value, relax.TupleGetItem):
        return [value.tuple_value]
    args = value.fields if isinstance(value, relax.Tuple) else getattr(value, "args", [])
    out = []
    for a in args:
        out += list(a.fields) if isinstance(a, relax.Tuple) else [a]
    return [a for a in out if isinstance(a, relax.Var)]


def channel_tables(mod: Any) -> Any:
    """Every chain (see the module's text) becomes a lookup in a per-channel table."""
    from tvm import relax

    chains = _Planner(mod["main"]).plan()
    if not chains:
        return mod

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            chain = chains.get(binding.var)
            if chain is None:
                super().visit_var_binding_(binding)
                return
            x = self.visit_expr(chain.source)
            if chain.pool is not None:
                scale, zero = chain.start.args[1:]
                pooled = self.builder_.emit(relax.Call(chain.pool.op, [self.builder_.emit(relax.Call(
                    chain.start.op, [x, scale, zero], chain.start.attrs))], chain.pool.attrs))
                x = self.builder_.emit(relax.op.quantize(pooled, scale, zero, axis=CHANNEL_AXIS,
                                                         out_dtype=chain.in_dtype))
            emit = self.builder_.emit if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output
            if chain.channels == 1:  # one table for every channel: int8_tables' form (entry v mod 256)
                table = np.roll(chain.table().reshape(-1), RANGES[chain.in_dtype][0])
                self.set_var_remap(binding.var, emit(relax.op.take(relax.const(table), x, axis=0, mode="wrap"),
                                                     name_hint=binding.var.name))  # (its node, for the profile)
                return
            rank = len(x.ty.shape)
            offsets = (np.arange(chain.channels, dtype=np.int32) * 256 - RANGES[chain.in_dtype][0])
            shape = [1] * rank
            shape[CHANNEL_AXIS] = chain.channels
            index = self.builder_.emit(relax.op.astype(x, "int32"))
            index = self.builder_.emit(relax.op.add(index, relax.const(offsets.reshape(shape))))
            lookup = relax.op.take(relax.const(chain.table().reshape(-1)), index, axis=0, mode="clip")
            self.set_var_remap(binding.var, emit(lookup, name_hint=binding.var.name))

    return rewrite_main(Rewrite(mod), mod)
