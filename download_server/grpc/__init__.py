"""gRPC edge of the download server: the servicer and the protobuf <-> domain converters."""
