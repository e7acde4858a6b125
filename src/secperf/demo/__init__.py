"""``secperf demo``: a local workload that gives every dashboard view real data.

A small HTTP service under steady load exposes its latency for scraping, and
a sample vulnerable project shipped in this package is rescanned periodically
so that the scans' effect on the service's latency, and the correlation that
explains it, can be watched live.
"""
