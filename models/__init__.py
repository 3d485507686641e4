"""Model families; importing this package registers every architecture."""

from mobiledeploy.registry import build_model, list_models, register_model

from . import alexnet, mobilenet_v1, shufflenet_v1, shufflenet_v2  # noqa: F401  (register on import)

__all__ = ["build_model", "list_models", "register_model"]
