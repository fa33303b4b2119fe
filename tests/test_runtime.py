"""Precision resolution: ``auto`` takes bf16 only where it is native, so it never warns or runs emulated."""

from __future__ import annotations

import warnings

import pytest
import torch

from rwm_core import runtime


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_exactly_where_bf16_is_native(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(runtime, "bf16_is_native", lambda device: native)
    cpu = torch.device("cpu")
    assert runtime.resolve_precision(cpu, "auto") == ("bfloat16" if native else "float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never takes the emulated path, so it never warns
        assert runtime.matmul_dtype(cpu, "auto") == (torch.bfloat16 if native else None)
    assert runtime.resolve_precision(cpu, "float32") == "float32"
    assert runtime.resolve_precision(cpu, "bfloat16") == "bfloat16"


def test_an_unknown_precision_is_an_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="auto"):
        runtime.resolve_precision(torch.device("cpu"), "fp16")


def test_the_config_schema_offers_exactly_the_precisions_runtime_knows() -> None:
    from rwm_core import config

    assert list(runtime.PRECISIONS) == config.PRECISIONS
