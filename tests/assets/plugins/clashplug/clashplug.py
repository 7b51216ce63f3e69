"""A plugin that takes a name already registered and declares an entry that is not callable."""

WIDTH = 16


def build(num_classes: int, in_channels: int = 3):
    """Clashing resnet20."""
    raise AssertionError("a clashing entry must never be loaded")
