"""Executes Jupyter notebooks headless with the GoNB kernel and fails on any error or panic.

GoNB reports a cell whose program panicked as successful, so besides error outputs this runner
also fails a notebook whose cell outputs contain "panic:". Run it through scripts/run-notebooks,
which puts go, goimports and the virtual environment on PATH.
"""

import argparse
import html
import pathlib
import re
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

PANIC_MARKER = "panic:"

# GoNB writes "exit status N" on stderr when a "!" shell command or the cell's program exits
# non-zero. A failed shell command leaves no error output, so this line is the only sign of it.
EXIT_STATUS = re.compile(r"^exit status [1-9][0-9]*$", re.MULTILINE)

MAX_CONTEXT_LINES = 40


def plain_text(output):
    """Returns the text of one cell output: stream text, error traceback or display data, with HTML tags removed."""
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", "")] + output.get("traceback", []))
    data = output.get("data", {})
    if "text/plain" in data:
        return data["text/plain"]
    if "text/markdown" in data:
        return data["text/markdown"]
    if "text/html" in data:
        without_style = re.sub(r"<style>.*?</style>", "", data["text/html"], flags=re.DOTALL)
        return html.unescape(re.sub(r"<[^>]+>", "", without_style))
    return ""


def find_problems(notebook):
    """Lists (cell number, reasons, cell output text) for every code cell that failed.

    A cell failed when it has an error output, when its outputs contain "panic:", or when its
    stderr has GoNB's "exit status N" line. Stream outputs arrive in small chunks, so they are
    joined before searching.
    """
    problems = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        text = "".join(plain_text(output) for output in outputs)
        stderr = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr")

        reasons = []
        if any(output.get("output_type") == "error" for output in outputs):
            reasons.append("error output")
        if PANIC_MARKER in text:
            reasons.append("panic in output")
        if EXIT_STATUS.search(stderr):
            reasons.append("non-zero exit status")
        if reasons:
            problems.append((number, ", ".join(reasons), text))
    return problems


def last_lines(text, count):
    """Returns the last count non-blank lines of text."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-count:])


def run_notebook(path, timeout_seconds, output_folder):
    """Executes one notebook in its own folder and returns the problems found."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="gonb",
        timeout=timeout_seconds,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # The GoNB kernel logs every step on stderr; keep that in a file and show it only on failure.
    with tempfile.TemporaryFile(mode="w+") as kernel_log:
        try:
            client.execute(stderr=kernel_log)
            problems = find_problems(notebook)
        except (CellTimeoutError, DeadKernelError) as error:
            problems = [(0, type(error).__name__, str(error))] + find_problems(notebook)
        except Exception as error:  # noqa: BLE001 - any failure of one notebook must not stop the others
            # nbclient 0.11.0 raises AssertionError from its cleanup when the kernel died early.
            problems = [(0, f"execution failed with {type(error).__name__}", repr(error))] + find_problems(notebook)
        finally:
            if output_folder is not None:
                output_folder.mkdir(parents=True, exist_ok=True)
                nbformat.write(notebook, output_folder / path.name)
        if problems:
            kernel_log.seek(0)
            problems.append((0, "GoNB kernel log", kernel_log.read()))
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path, help="notebook files to execute, in order")
    parser.add_argument("--timeout", type=int, default=900, help="maximum seconds per cell (default 900)")
    parser.add_argument("--output", type=pathlib.Path, help="folder to write the executed notebooks to")
    arguments = parser.parse_args()

    failed = 0
    for path in arguments.notebooks:
        print(f"run  {path}", flush=True)
        start = time.monotonic()
        problems = run_notebook(path.resolve(), arguments.timeout, arguments.output)
        seconds = time.monotonic() - start
        if problems:
            failed += 1
            print(f"FAIL {path} ({seconds:.0f} s)")
            for number, reasons, text in problems:
                where = f"cell {number}" if number else "notebook"
                print(f"  {where}: {reasons}; last lines:")
                print("    " + last_lines(text, MAX_CONTEXT_LINES).replace("\n", "\n    "))
        else:
            print(f"ok   {path} ({seconds:.0f} s)", flush=True)

    passed = len(arguments.notebooks) - failed
    print(f"notebooks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
