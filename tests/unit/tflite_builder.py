"""Tiny TFLite models for tests, written with the flatbuffer schema that ships in ai-edge-litert.

The graph is RESHAPE to [1, H*W*3] then SLICE of the first `classes` values, so the
"probabilities" are the first bytes of the input image: tests control the output
exactly. There is no TensorFlow in the runtime venv, hence no converter.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema


def build_model(side: int = 448, classes: int = 9, scale: float = 1 / 256, zero_point: int = 0) -> bytes:
    """A uint8 model: input [1, side, side, 3], output [1, classes], one quantisation for all tensors."""
    flat = side * side * 3
    buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel

    def buffer(data: np.ndarray | None = None) -> int:
        buf = schema.BufferT()
        if data is not None:
            buf.data = np.frombuffer(data.tobytes(), np.uint8).tolist()
        buffers.append(buf)
        return len(buffers) - 1

    def tensor(name: str, shape: list[int], ttype: int, buf: int, quantized: bool) -> schema.TensorT:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, shape, ttype, buf
        if quantized:  # XNNPACK wants RESHAPE/SLICE inputs and outputs quantised alike
            t.quantization = schema.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [scale], [zero_point]
        return t

    u8, i32 = schema.TensorType.UINT8, schema.TensorType.INT32
    tensors = [
        tensor("input", [1, side, side, 3], u8, buffer(), True),
        tensor("shape", [2], i32, buffer(np.array([1, flat], np.int32)), False),
        tensor("flat", [1, flat], u8, buffer(), True),
        tensor("begin", [2], i32, buffer(np.array([0, 0], np.int32)), False),
        tensor("size", [2], i32, buffer(np.array([1, classes], np.int32)), False),
        tensor("probs", [1, classes], u8, buffer(), True),
    ]
    codes = []
    for op in (schema.BuiltinOperator.RESHAPE, schema.BuiltinOperator.SLICE):
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode, code.version = op, op, 1
        codes.append(code)
    reshape = schema.OperatorT()
    reshape.opcodeIndex, reshape.inputs, reshape.outputs = 0, [0, 1], [2]
    reshape.builtinOptionsType = schema.BuiltinOptions.ReshapeOptions
    reshape.builtinOptions = schema.ReshapeOptionsT()
    reshape.builtinOptions.newShape = [1, flat]
    slice_op = schema.OperatorT()
    slice_op.opcodeIndex, slice_op.inputs, slice_op.outputs = 1, [2, 3, 4], [5]
    slice_op.builtinOptionsType = schema.BuiltinOptions.SliceOptions
    slice_op.builtinOptions = schema.SliceOptionsT()
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [0], [5], [reshape, slice_op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_model(path: Path, **kwargs: object) -> Path:
    path.write_bytes(build_model(**kwargs))  # type: ignore[arg-type]
    return path
