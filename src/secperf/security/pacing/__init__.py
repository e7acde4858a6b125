"""How scans share a machine: low priority, the impact budget, quiet-time scheduling, prediction."""
