"""A plugin that imports fine but whose builder fails: resnetcli must say whose builder it was."""


def build(num_classes: int, in_channels: int = 3, width: int = 8):
    """RaiseNet: always fails to build."""
    raise RuntimeError(f"raisenet cannot build width {width}")
