"""The workspace on disk: layout, scene manifests, annoy index files, feedback and tile names."""
