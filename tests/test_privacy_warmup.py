"""The scanner's one-time costs are paid once, off the event loop, before the first scan."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from offload_mcp import gate, privacy
from offload_mcp.packets import Message
from offload_mcp.privacy import warmup


def test_warm_loads_the_lazy_parts_in_a_fresh_process() -> None:
    code = (
        "import sys\n"
        "from offload_mcp.privacy import warm, warmed\n"
        "before = warmed() or 'phonenumbers' in sys.modules\n"
        "warm(); warm()\n"
        "from offload_mcp.privacy.engine import engine\n"
        "print(before, warmed(), 'phonenumbers' in sys.modules, engine.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True", "True", "1"]


def test_warm_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from offload_mcp.privacy import detectors

    calls: list[str] = []
    monkeypatch.setattr(warmup, "_done", threading.Event())
    monkeypatch.setattr(detectors, "scan", lambda text: calls.append(text) or [])
    warmup.warm()
    warmup.warm()
    assert len(calls) == 1 and warmup.warmed()


def test_warm_sample_reaches_the_detectors_slow_paths() -> None:
    kinds = {f.kind for f in privacy.scan(warmup._SAMPLE)}
    assert {"patient_name", "date_of_birth", "mrn", "ssn"} <= kinds


@pytest.mark.anyio
async def test_first_packet_warms_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    done = threading.Event()

    def fake_warm() -> None:
        threads.append(threading.current_thread())
        done.set()

    monkeypatch.setattr(privacy, "warm", fake_warm)
    monkeypatch.setattr(privacy, "warmed", done.is_set)
    messages = (Message("system", ""), Message("user", "mail jane.doe@acme-corp.io"))
    first = await gate.scan_messages(messages)
    second = await gate.scan_messages(messages)
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert first.counts() == second.counts() == {"email": 1}
