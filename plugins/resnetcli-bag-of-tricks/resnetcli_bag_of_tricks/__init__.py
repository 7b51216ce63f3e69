"""resnetcli plugin with seed 000's Bag-of-Tricks CIFAR networks, built from resnetcli.models' public blocks."""

__version__ = "0.1.0"
