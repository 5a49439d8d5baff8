"""Target descriptions: YAML files validated by a shipped JSON Schema, loaded into frozen dataclasses."""

from tvmx.target.loader import find_target, list_targets, load_target
from tvmx.target.model import Target

__all__ = ["Target", "find_target", "list_targets", "load_target"]
