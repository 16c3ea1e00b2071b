"""Runtime code shared by the gateway and both gRPC services: settings, logging, ids, times,
errors, the database layer and the gRPC server and channel set-up. Nothing service-specific."""
