"""The gate's conditions, one module per side: security and performance."""
