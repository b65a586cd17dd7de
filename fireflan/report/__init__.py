"""Report: evaluation runs compared as a Markdown table with plots, or as a page to browse."""

from fireflan.report.markdown import ReportConfig, report

__all__ = ["ReportConfig", "report"]
