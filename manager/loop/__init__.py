"""The experiment loop: the runner of one experiment, its tuner session, recovery after a
crash, and the manager of many experiments (see docs/architecture.md, "The loop")."""
