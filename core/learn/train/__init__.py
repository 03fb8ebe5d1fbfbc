"""Training: feature caches, the resumable trainer, the loss."""
