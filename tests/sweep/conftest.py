"""The sweep tests run the forge CLI through the `forge` fixture of tests/conftest.py."""
