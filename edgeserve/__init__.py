"""edgeserve: ONNX image classification at the edge with safe A/B, shadow and canary rollouts."""

__version__ = "0.1.0"
