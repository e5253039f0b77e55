"""Dataset readers, TFRecord schema and the prepare step."""

# Shapes of the training crops (`PipelineConfig.crop_aspect`), named here so the CLI needs no
# TensorFlow.
CROP_ASPECTS = ("input", "frame")
