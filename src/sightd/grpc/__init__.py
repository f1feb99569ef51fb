"""The gRPC transport: server bootstrap, interceptors, servicers, rich error statuses."""
