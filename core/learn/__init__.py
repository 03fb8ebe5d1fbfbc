"""Learning: datasets, training (with the prior similarity), evaluation and fine-tuning."""
