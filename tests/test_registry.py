"""One way to call a registry entry: Entry.build refuses unknown options and names a failing plugin."""

from __future__ import annotations

import importlib.metadata as md
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from resnetcli.errors import PluginError, UsageError
from resnetcli.registry import Entry, registry


def _explicit(num_classes: int, in_channels: int = 3, *, width: int = 8, depth: int = 2) -> dict[str, Any]:
    return {"num_classes": num_classes, "in_channels": in_channels, "width": width, "depth": depth}


def _positional_only(num_classes: int, in_channels: int = 3, /, *, width: int = 8) -> dict[str, Any]:
    return {"num_classes": num_classes, "in_channels": in_channels, "width": width}


def _forwards(num_classes: int, **options: Any) -> dict[str, Any]:
    return {"num_classes": num_classes, **options}


def _raises(num_classes: int, width: int = 8) -> None:
    raise RuntimeError("out of cheese")


def _value_error(num_classes: int, width: int = 8) -> None:
    raise ValueError(f"width {width} is too wide")


@pytest.fixture
def fake_module() -> Iterator[str]:
    name = "resnetcli_test_fake_plugin"
    module = types.ModuleType(name)
    module.explicit, module.forwards, module.raises = _explicit, _forwards, _raises  # type: ignore[attr-defined]
    module.value_error = _value_error  # type: ignore[attr-defined]
    module.positional_only = _positional_only  # type: ignore[attr-defined]
    sys.modules[name] = module
    yield name
    del sys.modules[name]


def _entry(module: str, attr: str, distribution: str = "fakeplug") -> Entry:
    ep = md.EntryPoint(name=attr, value=f"{module}:{attr}", group="resnetcli.architectures")
    return Entry(kind="architectures", name=attr, value=ep.value, distribution=distribution, _ep=ep)


def test_options_reach_the_builder(fake_module: str) -> None:
    built = _entry(fake_module, "explicit").build(5, options={"width": 4}, in_channels=1)
    assert built == {"num_classes": 5, "in_channels": 1, "width": 4, "depth": 2}


@pytest.mark.parametrize("bad", ["widht", "num_classes", "in_channels"])
def test_an_option_the_builder_does_not_take_lists_the_ones_it_does(fake_module: str, bad: str) -> None:
    """A typo, or an option that would overwrite what the caller passes, is one UsageError line."""
    with pytest.raises(UsageError) as info:
        _entry(fake_module, "explicit").build(5, options={bad: 4}, in_channels=1)
    message = str(info.value)
    assert message == (f"architecture 'explicit' from distribution 'fakeplug' does not take option(s) {bad}; "
                       "it takes: width, depth")


def test_positional_only_parameters_are_filled_but_never_options(fake_module: str) -> None:
    entry = _entry(fake_module, "positional_only")
    assert entry.build(5, 1, options={"width": 2}) == {"num_classes": 5, "in_channels": 1, "width": 2}
    with pytest.raises(UsageError, match=r"does not take option\(s\) in_channels; it takes: width$"):
        entry.build(5, options={"in_channels": 2})


def test_a_builder_taking_kwargs_gets_every_option(fake_module: str) -> None:
    entry = _entry(fake_module, "forwards")
    assert entry.accepts("anything")
    assert entry.build(3, options={"anything": 1}) == {"num_classes": 3, "anything": 1}


@pytest.mark.parametrize("attr", ["raises", "value_error"])
def test_a_plugin_builder_that_raises_is_one_plugin_error_naming_its_distribution(fake_module: str,
                                                                                   attr: str) -> None:
    with pytest.raises(PluginError) as info:
        _entry(fake_module, attr).build(3, options={"width": 2})
    assert info.value.exit_code == 5
    assert f"architecture '{attr}' from distribution 'fakeplug' failed: " in str(info.value)
    assert "\n" not in str(info.value)


def test_our_own_builder_refusing_a_value_is_a_usage_error(fake_module: str) -> None:
    with pytest.raises(UsageError, match="from distribution 'resnetcli' refused its options"):
        _entry(fake_module, "value_error", distribution="resnetcli").build(3, options={"width": 99})


def test_a_result_of_the_wrong_type_is_a_plugin_error(fake_module: str) -> None:
    with pytest.raises(PluginError, match="returned a dict, not a builtins.list"):
        _entry(fake_module, "explicit").build(3, expect=list)


def test_builtin_augmentation_refuses_an_unknown_option() -> None:
    from resnetcli.augment import build_pipeline

    with pytest.raises(UsageError, match=r"augmentation 'cifar' .* option\(s\) reflekt; it takes: padding, reflect, "
                                         r"flip"):
        build_pipeline("cifar", train=True, image_size=32, mean=(0.5,) * 3, std=(0.5,) * 3,
                       options={"reflekt": True})


def test_builtin_dataset_refuses_an_unknown_option(tmp_path: Any) -> None:
    from resnetcli.data import build_source

    with pytest.raises(UsageError, match=r"dataset 'processed' from distribution 'resnetcli' does not take "
                                         r"option\(s\) val_splt; it takes: val_split, seed"):
        build_source("processed", tmp_path, val_splt=0.1)


def test_momentum_is_known_from_the_signature() -> None:
    assert registry("optimizers").entry("sgd").accepts("momentum")
    assert not registry("optimizers").entry("adam").accepts("momentum")


class _ExitsOnImport:
    """An entry point whose module parses sys.argv with argparse on import (and so calls sys.exit)."""

    def load(self) -> Any:
        raise SystemExit(0)


def test_a_plugin_that_exits_on_import_is_a_plugin_error_not_a_silent_exit() -> None:
    entry = Entry(kind="architectures", name="argy", value="argy:net", distribution="argyplug",
                  _ep=_ExitsOnImport())  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"architecture 'argy' from distribution 'argyplug' failed to load "
                                          r"\(argy:net\): SystemExit: 0"):
        entry.load()


class _Loaded:
    def __init__(self, builder: Any) -> None:
        self.builder = builder

    def load(self) -> Any:
        return self.builder


def test_a_plugin_builder_that_exits_is_a_plugin_error_not_a_silent_exit() -> None:
    def net(num_classes: int, in_channels: int = 3) -> Any:
        raise SystemExit(0)  # e.g. argparse run inside the builder

    entry = Entry(kind="architectures", name="argy", value="argy:net", distribution="argyplug",
                  _ep=_Loaded(net))  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"architecture 'argy' from distribution 'argyplug' failed: SystemExit: 0"):
        entry.build(num_classes=2, in_channels=3)
