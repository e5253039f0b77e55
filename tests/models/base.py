"""One tester every architecture gets by declaring itself (segmentation_models.pytorch's
`tests/models/base.py` is the model): forward shape and range, `.keras` round trip, and an
export that holds TFLite built-in operators only.

    class TestMyNet(ModelTester):
        model_name = "my_net"          # its registry name
        input_shape = (64, 96)
"""

from __future__ import annotations

import keras
import numpy as np

from backdrop.models.registry import build_model


class ModelTester:
    model_name: str
    input_shape: tuple[int, int] = (64, 96)
    filters: int = 8

    def options(self) -> dict:
        """Builder options (e.g. `init_from`); may skip the test when a file is absent."""
        return {}

    def build(self) -> keras.Model:
        """The model, built once per tester class (no test changes it)."""
        cache = type(self).__dict__.get("_built")
        if cache is None:
            keras.utils.set_random_seed(0)
            cache = build_model(self.model_name, self.input_shape, self.filters, **self.options())
            type(self)._built = cache
        return cache

    def image(self, batch: int = 1) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.random((batch, *self.input_shape, 3), dtype=np.float32)

    def test_forward_gives_one_probability_channel_at_the_input_size(self):
        output = self.build().predict(self.image(2), verbose=0)
        assert output.shape == (2, *self.input_shape, 1)
        assert np.isfinite(output).all() and 0 <= output.min() and output.max() <= 1

    def test_keras_file_round_trip_gives_identical_outputs(self, tmp_path):
        model = self.build()
        model.save(tmp_path / "model.keras")
        reloaded = keras.models.load_model(tmp_path / "model.keras")
        np.testing.assert_allclose(
            reloaded.predict(self.image(), verbose=0),
            model.predict(self.image(), verbose=0),
            atol=1e-6,
        )

    def test_exports_with_builtin_ops_only_and_matches_keras(self, tmp_path):
        from ai_edge_litert.interpreter import Interpreter

        from backdrop.ship.export import export_tflite

        model = self.build()
        path = export_tflite(model, tmp_path / "model.tflite", "float32")
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        assert "CUSTOM" not in ops and not any(op.startswith("Flex") for op in ops)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], self.image())
        interpreter.invoke()
        exported = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        np.testing.assert_allclose(exported, model.predict(self.image(), verbose=0), atol=1e-4)
