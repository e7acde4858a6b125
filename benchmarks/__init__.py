"""secperf's performance figures, each measured beside its anchor in one run."""
