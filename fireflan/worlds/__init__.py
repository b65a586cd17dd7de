"""The embedded generators: the fictional wiki world and its questions (`wiki`), AgentBench-shaped DB tasks (`db`)."""
