"""Feature extractors for the structure loss."""

from sesim.features.vgg import (
    VGG16_LAYERS,
    VGG16Features,
    imagenet_weights_available,
    imagenet_weights_file,
    missing_weights_message,
)

__all__ = [
    "VGG16_LAYERS",
    "VGG16Features",
    "imagenet_weights_available",
    "imagenet_weights_file",
    "missing_weights_message",
]
