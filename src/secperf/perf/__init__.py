"""Performance monitoring: collectors, benchmark imports and scan impact."""
