"""The complexity counter checked against torch's own: `torch.utils.flop_counter.FlopCounterMode`.

torch counts FLOPs at the ATen level for matrix products and convolutions only (aten.mm, addmm, bmm,
baddbmm, convolution, and the CUDA attention kernels), two per multiply-add; this toolkit counts MACs
(one per multiply-add) per torch call. So FLOPs = 2 × MACs is expected for every model, except where the two
counters see different things; each such difference is named here with its size:

- `attention`: on the CPU, scaled_dot_product_attention dispatches to
  aten._scaled_dot_product_flash_attention_for_cpu, which torch's counter has no formula for (torch 2.13:
  flop_counter.py registers the flash/efficient/cudnn CUDA kernels only), so it counts 0 for attention;
  this toolkit counts q·kᵀ and p·v.
Anything else left over is reported as `unexplained` (a bench or test fails on it).
"""

from __future__ import annotations

from typing import Any

__all__ = ["cross_check"]


def cross_check(model: Any, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """{"macs", "flop_counter_flops", "by_aten_op": {op: flops}, "explained": {reason: macs}, "unexplained": macs}."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .analysis import analyse_model

    report = analyse_model(model, input_shape)
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(*input_shape))
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    flops = int(counter.get_total_flops())
    explained: dict[str, int] = {}
    attention = sum(layer.macs for layer in report.layers if layer.op == "attention")
    if attention and not any("attention" in op for op in by_op):
        explained["attention: torch's counter has no formula for aten._scaled_dot_product_flash_attention_for_cpu"] = attention
    unexplained = report.macs - sum(explained.values()) - flops // 2
    return {"macs": report.macs, "flop_counter_flops": flops, "by_aten_op": by_op, "explained": explained,
            "unexplained": unexplained + (flops % 2)}
