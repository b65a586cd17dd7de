"""The environments an agent acts in (the wiki, SQL databases), and the parser of its actions."""

from fireflan.tools.actions import Parsed, parse_action
from fireflan.tools.base import Observation, Tool
from fireflan.tools.noise import NoisyTool
from fireflan.tools.sql import SqlEnv, SqlTool
from fireflan.tools.wiki import Page, Wiki, load_corpus

__all__ = ["NoisyTool", "Observation", "Page", "Parsed", "SqlEnv", "SqlTool", "Tool", "Wiki", "load_corpus",
           "parse_action"]
