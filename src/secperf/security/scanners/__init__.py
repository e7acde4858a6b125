"""Scanners, one module each, behind ``interface.Scanner``."""
