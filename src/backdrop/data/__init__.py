"""Dataset readers, TFRecord schema and the prepare step."""

# Named here so the CLI needs no TensorFlow: the shapes of the training crops
# (`PipelineConfig.crop_aspect`) and the default share of whole-frame examples.
CROP_ASPECTS = ("input", "frame")  # the first is the default
DEFAULT_CROP_ASPECT = CROP_ASPECTS[0]
DEFAULT_INPUT_SHAPE = (128, 128)  # the model input when none is given
WHOLE_FRAME_PROBABILITY = 0.3
