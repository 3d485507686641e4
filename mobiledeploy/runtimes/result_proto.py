"""The binary `tflite.tools.benchmark.BenchmarkResult` that `benchmark_model --result_file_path=F` writes.

Schema: `tflite/tools/benchmark/proto/benchmark_result.proto` in https://github.com/google-ai-edge/LiteRT
(proto2; written by `BenchmarkLoggingListener::OnBenchmarkEnd` in `litert/tools/benchmark_litert_model.h`).
The descriptor below is that file, field for field, so no generated code or protoc is needed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ..errors import RunnerError

__all__ = ["parse_result_proto", "result_message_class", "SCHEMA"]

_FLOAT, _INT64, _INT32, _STRING, _MESSAGE = "TYPE_FLOAT", "TYPE_INT64", "TYPE_INT32", "TYPE_STRING", "TYPE_MESSAGE"
#: message name → [(field name, number, type, message type name)], as in benchmark_result.proto
SCHEMA: dict[str, list[tuple[str, int, str, str | None]]] = {
    "LatencyMetrics": [(name, number, _FLOAT, None) for number, name in enumerate(
        ("avg_ms", "min_ms", "max_ms", "stddev_ms", "median_ms", "p5_ms", "p95_ms", "init_ms", "first_inference_ms",
         "average_warm_up_ms"), start=1)],
    "MemoryMetrics": [("init_footprint_kb", 1, _INT64, None), ("overall_footprint_kb", 2, _INT64, None),
                      ("peak_mem_mb", 3, _FLOAT, None)],
    "MiscMetrics": [("model_size_mb", 1, _FLOAT, None), ("num_runs", 2, _INT32, None),
                    ("num_warmup_runs", 3, _INT32, None), ("model_throughput_in_mb_per_sec", 4, _FLOAT, None)],
    "BenchmarkResult": [("name", 1, _STRING, None), ("latency_metrics", 2, _MESSAGE, "LatencyMetrics"),
                        ("memory_metrics", 3, _MESSAGE, "MemoryMetrics"), ("misc_metrics", 4, _MESSAGE, "MiscMetrics")],
}
PACKAGE = "tflite.tools.benchmark"


@lru_cache(maxsize=1)
def result_message_class() -> Any:
    """The BenchmarkResult message class, built from SCHEMA in a private descriptor pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(name="mobiledeploy/benchmark_result.proto", package=PACKAGE,
                                               syntax="proto2")
    for message, fields in SCHEMA.items():
        desc = proto.message_type.add(name=message)
        for name, number, kind, type_name in fields:
            field = desc.field.add(name=name, number=number, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                                   type=getattr(descriptor_pb2.FieldDescriptorProto, kind))
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName(f"{PACKAGE}.BenchmarkResult")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)  # protobuf < 4.21


def parse_result_proto(data: bytes) -> dict[str, Any]:
    """The proto's set fields as {"latency_metrics": {...}, "memory_metrics": {...}, "misc_metrics": {...}}."""
    from google.protobuf.message import DecodeError

    message = result_message_class()()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RunnerError(f"the benchmark result file is not a BenchmarkResult proto ({exc})") from None
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        out[field.name] = {f.name: v for f, v in value.ListFields()} if field.message_type else value
    if not out.get("latency_metrics"):
        raise RunnerError("the benchmark result file holds no latency metrics")
    return out

