"""Use cases of sightd, independent of the transport (gRPC servicers and the REST gateway call them)."""
