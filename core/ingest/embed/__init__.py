"""Tiles to vectors, clip-retrieval style: reader -> mapper -> writer, chained by the runner."""
