"""Helpers shared by the test suite: real local services started on 127.0.0.1."""
