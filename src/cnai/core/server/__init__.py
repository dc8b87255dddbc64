"""The HTTP API server: routes, watch streaming, request limits and the OpenAPI document."""
