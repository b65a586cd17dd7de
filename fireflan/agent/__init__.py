"""The agent: its loop (`loop`), the inference methods around it (`methods`), its few-shot prompts
(`prompts`), the action constraint for GGUF decoding (`constrain`) and the hallucination probes (`probes`)."""
