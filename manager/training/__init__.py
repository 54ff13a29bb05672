"""Training services: where and how trials run, chosen by ``trainingService.platform``
(:mod:`manager.training.registry`; docs/architecture.md, "Training services")."""
