"""Hardware budgets and footprints: RAM, Flash and MACs as TensorFlow Lite Micro sees them."""
