"""Fine-tuning on the analysts' marks: config, marks, features, replay, loop and guard."""
