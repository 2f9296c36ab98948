"""The Avro schemas, installed as the package ``broker._schemas`` (see setup.py); data only, no code."""
