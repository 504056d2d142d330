"""MLflow "model from code" for textclf's own saved form (custom heads, peft adapters).

MLflow stores this file with the model and runs it on load, so no pickled object is involved; it
needs textclf installed. `mlflow.pyfunc.load_model(uri).predict(["some text"])` returns one row per
text.
"""

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class TextclfModel(PythonModel):
    def load_context(self, context):
        from textclf.model.saved import predictor_from_dir

        self.predictor = predictor_from_dir(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            texts = model_input.iloc[:, 0].astype(str).tolist()
        else:
            texts = [model_input] if isinstance(model_input, str) else list(model_input)
        rows = self.predictor.predict(texts)
        return pd.DataFrame(
            {"label": [r["label"] for r in rows], "score": [r["score"] for r in rows]}
        )


mlflow.models.set_model(TextclfModel())
