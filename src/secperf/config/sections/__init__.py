"""The sections of the config file, one module per top-level table (``[scan]``, ``[monitor]``,
``[alerts]``, ...): each a frozen pydantic model that forbids unknown keys.
"""
