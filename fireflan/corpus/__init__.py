"""Trajectories -> chat records for SFT: FireAct's format, Agent-FLAN's alignment, capabilities,
negative samples, importers for published data (see build.py for the stage)."""
