"""A JupyterLab server started for a test, and what a learner's browser sees in it (Playwright, headless Chromium).

:class:`LabServer` runs ``python -m jupyterlab`` on 127.0.0.1 with a random free port, a random token,
its own settings, workspace, config, data and runtime folders, autosave off, and a copy of the notebooks,
so nothing it does touches ``notebooks/`` or the user's Jupyter setup. Its one kernel spec, ``python3``,
is the interpreter running the tests (the project's ``.venv`` python). Kernels inherit the server's
environment: ``NST_*`` from the caller, ``NST_QUICK=1``, and no ``MPLBACKEND`` (a learner's kernel uses the
inline backend, not Agg).

:class:`NotebookPage` opens one notebook in a browser page and runs it as a learner does (menu *Run → Run
All Cells*), waits on page conditions (execution prompts, the kernel status indicator), and reports what
the page shows: each code cell's prompt, first code line and outputs.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: Settings a learner could set in *Settings → Settings Editor*, written as the user's settings.
LAB_SETTINGS = {
    # nothing is written back to the temporary copies while the tests run
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # every cell stays in the page (no virtual scrolling), so the tests can read all outputs
    # start the notebook's kernel without the "Select Kernel" dialog (shown when the page loads before the specs)
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none", "autoStartDefaultKernel": True},
    # no news or update checks (offline) and no pop-up asking about them
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")

ERROR_MIME = "application/vnd.jupyter.error"
STDERR_MIME = "application/vnd.jupyter.stderr"  # JupyterLab 4 shows error outputs (tracebacks) as this too


def looks_like_error(text: str) -> bool:
    """A traceback, or an exception line such as ``SyntaxError: ...`` (warnings are not errors)."""
    return "Traceback (most recent call last)" in text or bool(re.search(r"^\w*(Error|Exception)\b", text, re.M))


def find_chromium() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or ``$NST_CHROMIUM``; None if there is none."""
    if os.environ.get("NST_CHROMIUM"):
        return os.environ["NST_CHROMIUM"]
    for candidate in CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LabServer:
    """``python -m jupyterlab`` in a temporary folder; ``start()``, ``url(path)``, ``api(path)``, ``stop()``."""

    def __init__(self, home: Path, notebooks: list[Path], environment: dict[str, str]):
        self.home = home
        self.root = home / "notebooks"  # the server's root: a copy of the notebooks
        self.notebooks = notebooks
        self.environment = environment
        self.token = secrets.token_hex(16)
        self.port = 0
        self.log_path = home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        self._prepare()
        for _attempt in range(3):  # the free port may be taken between probing and binding: try another
            self.port = free_port()
            if self._launch(timeout):
                return
        raise RuntimeError(f"JupyterLab did not start; its log ends with:\n{self.log_tail()}")

    def _prepare(self) -> None:
        self.root.mkdir(parents=True)
        for notebook in self.notebooks:
            shutil.copy2(notebook, self.root / notebook.name)
        for plugin, values in LAB_SETTINGS.items():
            path = self.home / "settings" / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        kernel = self.home / "jupyter_path" / "kernels" / "python3" / "kernel.json"
        kernel.parent.mkdir(parents=True)
        kernel.write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }
            )
        )

    def _server_environment(self) -> dict[str, str]:
        env = {key: value for key, value in self.environment.items() if key != "MPLBACKEND"}
        env.update(
            NST_QUICK="1",
            JUPYTER_PATH=str(self.home / "jupyter_path"),  # searched first: our python3 kernel spec wins
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def _launch(self, timeout: float) -> bool:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",  # CI runs as root
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={self.home / 'settings'}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
        ]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command, cwd=self.root, env=self._server_environment(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                self.api("status")
                return True
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s; its log ends with:\n{self.log_tail()}")

    def url(self, path: str = "lab") -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session and its kernel (each test's kernel holds a VGG; two cores are shared)."""
        for session in self.api("sessions"):
            self.api(f"sessions/{session['id']}", method="DELETE")

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


# --------------------------------------------------------------------------- the page

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  #: the notebook shown (the only one open)

# Run All marks every cell it queues "[*]" at once, so once it has started, no "[*]" left means it is over:
# finished, or stopped at an error (JupyterLab then unqueues the cells below), or the kernel died.
# An open dialog (a question nobody answers, "kernel died") also ends the wait; problems() reports it.
RUN_FINISHED_JS = r"""() => {
  if (document.querySelector('.jp-Dialog')) return true;
  const prompts = [...document.querySelectorAll('PANEL .jp-CodeCell .jp-InputPrompt')];
  return prompts.length > 0 && !prompts.some(prompt => prompt.textContent.includes('*'));
}""".replace("PANEL", PANEL)

# Every code cell: its position among all cells, prompt, first code line, and outputs (mime type and text).
CELLS_JS = r"""() => [...document.querySelectorAll('PANEL .jp-Cell')].map((cell, index) => ({
  index,
  code: cell.classList.contains('jp-CodeCell'),
  prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
  first_line: (cell.querySelector('.jp-InputArea-editor .cm-line')?.textContent || '').trim(),
  outputs: [...cell.querySelectorAll('.jp-OutputArea-child .jp-OutputArea-output')].map(output => ({
    mime: output.getAttribute('data-mime-type')
      || output.querySelector('[data-mime-type]')?.getAttribute('data-mime-type')
      || (output.querySelector('.jupyter-widgets') ? 'widget' : 'unknown'),
    text: output.innerText.slice(0, 2000),
  })),
})).filter(cell => cell.code)""".replace("PANEL", PANEL)


@dataclass
class Cell:
    index: int  # position among all cells of the notebook (markdown included), counting from 0
    prompt: str  # "[3]:", "[ ]:" or "[*]:"
    first_line: str
    outputs: list[dict] = field(default_factory=list)

    def name(self) -> str:
        return f"cell {self.index} {self.prompt or '[ ]:'} `{self.first_line[:70]}`"


class NotebookPage:
    """One notebook open in JupyterLab in a Playwright ``page``."""

    def __init__(self, page, server: LabServer, notebook: str, screenshots: Path):
        self.page, self.server, self.notebook = page, server, notebook
        self.screenshots = screenshots
        self.stem = Path(notebook).stem

    def open(self, timeout_ms: float = 120_000) -> None:
        # a workspace of its own, reset: only this notebook is open, whatever the tests before it opened
        workspace = f"{self.stem}-{secrets.token_hex(4)}"
        self.page.goto(self.server.url(f"lab/workspaces/{workspace}/tree/{self.notebook}") + "&reset")
        self.page.locator(f"{PANEL} .jp-CodeCell").first.wait_for(timeout=timeout_ms)
        self.wait_for_kernel("idle", timeout_ms)
        dialogs = self.page.locator(".jp-Dialog")
        assert not dialogs.count(), (
            f"{self.notebook}: a dialog opened with the notebook: {dialogs.first.inner_text()!r}"
        )

    def kernel_status(self) -> str:
        indicator = self.page.locator(f"{PANEL} .jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator")
        return indicator.first.get_attribute("data-status") or "unknown"

    def wait_for_kernel(self, status: str, timeout_ms: float) -> None:
        self.page.locator(
            f'{PANEL} .jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator[data-status="{status}"]'
        ).first.wait_for(state="attached", timeout=timeout_ms)

    def run_all(self, timeout_ms: float) -> float:
        """*Run → Run All Cells* from the menu bar; returns the seconds until the run finished."""
        start = time.monotonic()
        self._watch_kernel()
        # click into the notebook first, as a learner does: the Run menu acts on the notebook that has focus
        self.page.locator(f"{PANEL} .jp-Cell .jp-InputPrompt").first.click()
        started = f"() => [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')]" + (
            ".some(prompt => /\\[(\\*|\\d+)\\]/.test(prompt.textContent))"
        )
        for _attempt in range(3):  # the menu item is disabled for a moment after the page loads
            self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            item = self.page.get_by_role("menuitem", name=re.compile(r"^Run All Cells"))
            if item.get_attribute("aria-disabled") == "true":
                self.page.keyboard.press("Escape")
                self.page.wait_for_timeout(1000)
                continue
            item.click()
            try:
                self.page.wait_for_function(started, timeout=15_000, polling=250)
                break
            except Exception:  # playwright's TimeoutError: the click did not start the run; try again
                continue
        else:
            raise AssertionError(
                f"{self.notebook}: Run → Run All Cells started nothing (kernel {self.kernel_status()})"
            )
        self.wait_until_finished(timeout_ms)
        return time.monotonic() - start

    def _watch_kernel(self) -> None:
        """Note every status the kernel indicator shows from now on ("dead", "autorestarting", ...)."""
        self.page.evaluate(
            r"""() => {
              const indicator = document.querySelector('PANEL .jp-Notebook-ExecutionIndicator');
              window.nstKernelStates = [indicator.dataset.status];
              new MutationObserver(() => window.nstKernelStates.push(indicator.dataset.status))
                .observe(indicator, {attributes: true, attributeFilter: ['data-status']});
            }""".replace("PANEL", PANEL)
        )

    def kernel_states_seen(self) -> set[str]:
        return set(self.page.evaluate("window.nstKernelStates || []"))

    def wait_until_finished(self, timeout_ms: float) -> None:
        try:
            self.page.wait_for_function(RUN_FINISHED_JS, timeout=timeout_ms, polling=250)
        except Exception as error:  # playwright's TimeoutError: say which cell was still running
            busy = [cell.name() for cell in self.cells() if "*" in cell.prompt]
            raise AssertionError(
                f"{self.notebook}: Run All did not finish within {timeout_ms / 1000:.0f} s; "
                f"still running: {busy[:1]} (kernel {self.kernel_status()})"
            ) from error
        try:
            self.wait_for_kernel("idle", 30_000)
        except Exception:  # playwright's TimeoutError: a dead or busy kernel, which problems() reports
            pass

    def cells(self) -> list[Cell]:
        return [Cell(c["index"], c["prompt"], c["first_line"], c["outputs"]) for c in self.page.evaluate(CELLS_JS)]

    def problems(self) -> list[str]:
        """What a learner would see go wrong: error outputs, tracebacks on stderr, unexecuted cells, a dead kernel."""
        found = []
        for cell in self.cells():
            for output in cell.outputs:
                if output["mime"] in (ERROR_MIME, STDERR_MIME) and looks_like_error(output["text"]):
                    found.append(f"{cell.name()} shows an error:\n{output['text'][-1500:]}")
            if not re.fullmatch(r"\[\d+\]:", cell.prompt):
                found.append(f"{cell.name()} was not executed (expected an execution count)")
        died = self.kernel_states_seen() & {"dead", "autorestarting", "restarting", "terminating"}
        if died:
            found.append(f"the kernel died or restarted during the run (its status went {sorted(died)})")
        status = self.kernel_status()
        if status != "idle":
            found.append(f"the kernel is {status!r}, expected 'idle' after the run")
        dialogs = self.page.locator(".jp-Dialog")
        if dialogs.count():
            found.append(f"a dialog is open: {dialogs.first.inner_text()[:300]!r}")
        return found

    def code_cell(self, source_text: str):
        """Locator of the code cell whose code contains ``source_text``."""
        cells = self.page.locator(f"{PANEL} .jp-CodeCell").filter(
            has=self.page.locator(".jp-InputArea-editor", has_text=source_text)
        )
        cells.first.wait_for(state="attached", timeout=30_000)  # editors fill in just after the notebook opens
        assert cells.count() == 1, f"{self.notebook}: expected one code cell containing {source_text!r}"
        return cells.first

    def show_first_error(self) -> bool:
        """Scroll the first output that looks like an error into view (for the screenshot); False if none."""
        return self.page.evaluate(
            r"""() => {
              const outputs = document.querySelectorAll('PANEL [data-mime-type="application/vnd.jupyter.stderr"]');
              const error = [...outputs].find(e => /Traceback|^\w*(Error|Exception)\b/m.test(e.textContent));
              if (error) error.scrollIntoView({block: 'center'});
              return Boolean(error);
            }""".replace("PANEL", PANEL)
        )

    def screenshot(self, name: str, locator=None) -> Path:
        """Save a PNG of ``locator`` (or of the page) as ``<screenshots>/<notebook>-<name>.png``."""
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{self.stem}-{name}.png"
        if locator is not None:
            locator.scroll_into_view_if_needed()
            locator.screenshot(path=path)
        else:
            self.page.screenshot(path=path)
        return path


def decode_png(data_url: str, size: tuple[int, int] | None = None):
    """A ``data:image/png;base64,...`` URL as an RGB numpy array, resized to ``size`` (width, height) if given."""
    import numpy as np
    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(picture, dtype=np.int16)


def picture_change(first: str, last: str) -> float:
    """How much the stylised picture changed between two preview frames (PNG data URLs).

    Both previews draw the picture in the left half of the figure, under a title ("step 4/20") that
    changes anyway; so the mean absolute difference (0-255) is taken over the left 45 % of the width
    below the top 12 % of the height (the inline backend may crop frames to slightly different sizes:
    the last is resized to the first).
    """
    a = decode_png(first)
    height, width = a.shape[:2]
    b = decode_png(last, size=(width, height))
    rows, columns = slice(int(0.12 * height), height), slice(0, int(0.45 * width))
    return float(abs(a[rows, columns] - b[rows, columns]).mean())
