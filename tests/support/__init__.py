"""What the tests share: paths, the services they talk to, factories, and real
Prometheus, Alertmanager and exporter processes (``pythonpath`` puts tests/ on
``sys.path``, so a test in any folder imports ``support.<module>``)."""
