"""Gates: checks that must pass before a workload floor is raised (see ``base.Gate``)."""
