"""Retrieval evaluation: recall metrics over image-caption score matrices.

Kept import-free; import ``core.learn.eval.metrics`` directly.
"""
