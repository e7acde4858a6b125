"""Security validation: scanners, the validator that runs them, baselines and triage."""
