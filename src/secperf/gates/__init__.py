"""The unified quality gate and its reports."""
