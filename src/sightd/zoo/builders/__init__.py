"""ONNX graph builders, one per architecture, written with onnx.helper and NumPy only."""
