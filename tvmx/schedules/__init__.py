"""Schedules tvmx adds to TVM's defaults."""
