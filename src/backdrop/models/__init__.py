"""Model builders and the registry that names them."""
