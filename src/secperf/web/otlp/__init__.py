"""The OTLP/HTTP metrics receiver's parts: the wire (``wire``), names and the mapping."""
