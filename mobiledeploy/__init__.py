"""mobiledeploy: efficient CNNs from a PyTorch reference to ARM phones, measured on the device."""

__version__ = "0.1.0"
