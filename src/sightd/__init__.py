"""sightd: a self-hosted image-recognition service (Deepomatic API v0.7 over gRPC and REST)."""

__version__ = "0.1.0"
