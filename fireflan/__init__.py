"""fireflan: teacher trajectories -> chat training data -> LoRA fine-tune -> GGUF -> ReAct agent.

`import fireflan` is instant: every stage imports its heavy libraries when it runs.
"""

__version__ = "0.1.0"
