"""torchvision's MobileNetV2 (width 1.0) from its state dict.

Stem conv 3x3 stride 2 + BN + ReLU6; inverted residual blocks (t, c, n, s); a final 1x1 conv to 1280 + BN +
ReLU6; global average pooling; a linear layer to 1000 logits. Batch normalisation stays a
BatchNormalization node (epsilon 1e-5, as torchvision) so the graph holds the checkpoint's values as they are.
"""

from __future__ import annotations

import numpy as np
import onnx

from sightd.zoo.builders.graph import Graph

# (expansion t, output channels c, repeats n, first stride s), torchvision's table.
BLOCKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
INPUT = "input"
OUTPUT = "logits"
SIZE = 224


class _Builder:
    def __init__(self, state: dict[str, np.ndarray]) -> None:
        self.state = state
        self.used: set[str] = set()
        self.graph = Graph("mobilenet_v2")

    def tensor(self, key: str) -> str:
        if key not in self.state:
            raise ValueError(f"the checkpoint lacks {key}")
        self.used.add(key)
        return self.graph.const(key, self.state[key].astype(np.float32))

    def conv_bn(self, x: str, prefix_conv: str, prefix_bn: str, stride: int, relu6: bool) -> str:
        weight = self.state[f"{prefix_conv}.weight"]
        out_channels, in_per_group, k, _ = weight.shape
        groups = out_channels if in_per_group == 1 else 1  # depthwise: one input channel per filter
        y = self.graph.op(
            "Conv",
            [x, self.tensor(f"{prefix_conv}.weight")],
            prefix_conv,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=groups,
        )
        y = self.graph.op(
            "BatchNormalization",
            [
                y,
                *(self.tensor(f"{prefix_bn}.{p}") for p in ("weight", "bias", "running_mean", "running_var")),
            ],
            prefix_bn,
            epsilon=1e-5,
        )
        self.used.add(f"{prefix_bn}.num_batches_tracked")
        if relu6:
            y = self.graph.op(
                "Clip", [y, self.graph.const("zero", 0.0), self.graph.const("six", 6.0)], "relu6"
            )
        return y

    def build(self) -> onnx.ModelProto:
        g = self.graph
        x = g.input(INPUT, ["N", 3, SIZE, SIZE])
        x = self.conv_bn(x, "features.0.0", "features.0.1", 2, relu6=True)
        channels, index = 32, 1
        for t, c, n, s in BLOCKS:
            for repeat in range(n):
                stride = s if repeat == 0 else 1
                p = f"features.{index}.conv"
                block_in, y, layer = x, x, 0
                if t != 1:
                    y = self.conv_bn(y, f"{p}.0.0", f"{p}.0.1", 1, relu6=True)
                    layer = 1
                y = self.conv_bn(y, f"{p}.{layer}.0", f"{p}.{layer}.1", stride, relu6=True)
                y = self.conv_bn(y, f"{p}.{layer + 1}", f"{p}.{layer + 2}", 1, relu6=False)
                x = (
                    g.op("Add", [block_in, y], f"features.{index}.add")
                    if stride == 1 and channels == c
                    else y
                )
                channels, index = c, index + 1
        x = self.conv_bn(x, f"features.{index}.0", f"features.{index}.1", 1, relu6=True)
        x = g.op("GlobalAveragePool", [x], "pool")
        x = g.op("Flatten", [x], "flatten", axis=1)
        x = g.op(
            "Gemm", [x, self.tensor("classifier.1.weight"), self.tensor("classifier.1.bias")], "fc", transB=1
        )
        g.output(OUTPUT, x, ["N", 1000])
        unused = set(self.state) - self.used
        if unused:
            raise ValueError(f"checkpoint tensors the architecture does not use: {sorted(unused)[:5]}")
        return g.model("MobileNetV2 (torchvision, ImageNet-1k), converted by sightd.zoo from its state dict.")


def build(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    return _Builder(state).build()
