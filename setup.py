"""Package discovery that pyproject.toml cannot express: ``schemas/`` ships as ``broker._schemas``.

The top-level ``schemas/`` directory stays the one source of truth (the design
fixes the top level); setuptools maps it to the package ``broker._schemas`` so
an installed wheel carries the Avro schemas beside the code, and an editable
install finds the same files in place. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["broker", "broker.*", "adapters", "adapters.*"]), "broker._schemas"],
    package_dir={"broker._schemas": "schemas"},
)
