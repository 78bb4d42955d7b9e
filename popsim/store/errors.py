"""The exception every problem with a cohort file raises."""


class StoreError(Exception):
    """A problem with a cohort file (missing, not a cohort, mismatched data), in one line."""
