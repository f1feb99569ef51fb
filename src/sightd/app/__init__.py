"""Use cases of sightd, independent of the transport (the gRPC servicers call them; the REST gateway goes
through gRPC)."""
