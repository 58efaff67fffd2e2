"""HTTP/1.1 for the narrows server: sans-I/O parser, response writer, ASGI cycle, protocol."""
