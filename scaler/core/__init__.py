"""The pure planning core: capacity arithmetic, policy and simulation. No clock reads, no I/O."""
