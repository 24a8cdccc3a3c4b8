"""Generated gRPC stubs for mediadl. Never edit: run `make protos`."""
