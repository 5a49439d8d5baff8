"""`tvmx tune`: MetaSchedule searches every kernel of a model, measured on the target simulator."""
