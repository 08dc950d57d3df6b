"""The lab fixtures (test_lab, deployed) live in tests/conftest.py, shared with the
check and sweep tests so one lab serves the whole session."""
