"""What the CLI's commands do, one module per area; cli.py only parses and calls."""
