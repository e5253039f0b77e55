"""Dataset readers, TFRecord schema and the prepare step."""

# Named here so the CLI needs no TensorFlow: the shapes of the training crops
# (`PipelineConfig.crop_aspect`) and the default share of whole-frame examples.
CROP_ASPECTS = ("input", "frame")
WHOLE_FRAME_PROBABILITY = 0.3
