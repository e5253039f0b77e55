"""Dataset readers, TFRecord schema and the prepare step."""
