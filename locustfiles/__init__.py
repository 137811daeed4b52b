"""Locust users for TF Serving, their load shapes, payload metrics and export to the run-result schema.

Only `tfserving.py`, `shapes.py` and `webui.py` import locust (and with it gevent's monkey-patching);
they are loaded by Locust itself (`locust -f locustfiles/tfserving.py`), never imported by the rest of
the suite. Every other module here is plain Python that tests and `tfsbench` can import safely.
"""
