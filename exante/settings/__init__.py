"""Settings package: ``base`` (local runs), ``test`` and ``production``."""
