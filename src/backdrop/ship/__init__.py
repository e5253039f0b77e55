"""Shipping a model: TFLite export, its exact graph rewrites, its metadata and its model card."""
