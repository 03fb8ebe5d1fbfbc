"""``python -m core``: one module per subcommand, assembled by ``main``."""
