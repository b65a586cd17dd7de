"""Export: merge the adapter, convert to GGUF, quantize, verify against transformers, write an Ollama Modelfile."""

from fireflan.export.run import ExportConfig, describe, export

__all__ = ["ExportConfig", "describe", "export"]
