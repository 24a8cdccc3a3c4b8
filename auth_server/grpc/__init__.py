"""The gRPC edge of the auth server: the servicer and the converters between protobuf and the domain."""
