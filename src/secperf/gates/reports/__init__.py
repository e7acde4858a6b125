"""Report formats: one module each (markdown, junit, sarif, json)."""
