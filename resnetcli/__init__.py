"""resnetcli: from a folder of images to a trained, evaluated ResNet, from one command line."""

__version__ = "0.1.0"
