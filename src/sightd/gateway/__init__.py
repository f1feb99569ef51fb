"""The REST gateway: Deepomatic API v0.7 JSON over the public sightd.v1 gRPC API (docs/rest.md)."""
