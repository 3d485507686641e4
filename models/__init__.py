"""Model families; importing this package registers every architecture."""

from mobiledeploy.registry import build_model, list_models, register_model

from . import alexnet, mobilenet_v1, shufflenet_v1, shufflenet_v2  # noqa: F401  (register on import)
from . import condensenet, mnasnet, mobilenet_v2, mobilenet_v3, resnet, squeezenet, squeezenext, xception  # noqa: F401
from . import edgenext, efficientnet, efficientvit, fastvit, levit, mobilenet_v4, mobilevit, mobileone, repvit  # noqa: F401
from . import microbench  # noqa: F401

__all__ = ["build_model", "list_models", "register_model"]
