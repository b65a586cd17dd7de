"""The environments an agent acts in, and the parser of its actions."""

from fireflan.tools.actions import Parsed, parse_action
from fireflan.tools.noise import NoisyTool
from fireflan.tools.wiki import Observation, Page, Wiki, load_corpus

__all__ = ["NoisyTool", "Observation", "Page", "Parsed", "Wiki", "load_corpus", "parse_action"]
