"""Unit tests for the failure detection of run_notebooks.py, on notebooks built in memory.

The outputs below copy the shapes GoNB v0.11.5 produced for a panicking cell, a failed shell
command and a compile error. Run: .venv/bin/python -m unittest discover -s scripts -p 'test_*.py'
"""

import unittest

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from run_notebooks import find_problems


def notebook_with_outputs(*outputs):
    cell = new_code_cell("%%\n")
    cell.outputs = list(outputs)
    return new_notebook(cells=[new_markdown_cell("title"), cell])


def stderr(text):
    return new_output("stream", name="stderr", text=text)


class FindProblemsTest(unittest.TestCase):
    def test_clean_cell_passes(self):
        notebook = notebook_with_outputs(new_output("stream", name="stdout", text="fine\n"))
        self.assertEqual(find_problems(notebook), [])

    def test_panic_split_across_chunks(self):
        # GoNB streams stderr in small chunks, so "panic:" may be cut in two.
        notebook = notebook_with_outputs(stderr("pan"), stderr("ic: boom\n"))
        problems = find_problems(notebook)
        self.assertEqual(len(problems), 1, problems)
        self.assertEqual(problems[0][0], 2, "the code cell is the notebook's second cell")
        self.assertIn("panic in output", problems[0][1])

    def test_failed_shell_command(self):
        notebook = notebook_with_outputs(stderr("exit status 1\n"))
        problems = find_problems(notebook)
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("non-zero exit status", problems[0][1])

    def test_error_output(self):
        error = new_output("error", ename="ERROR", evalue="exit status 1", traceback=["exit status 1"])
        html = new_output("display_data", data={"text/html": "<style>x{}</style><div>undefined: y</div>"})
        problems = find_problems(notebook_with_outputs(html, error))
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("error output", problems[0][1])
        self.assertIn("undefined: y", problems[0][2], "HTML output is kept as text without tags")
        self.assertNotIn("<div>", problems[0][2])

    def test_exit_status_zero_passes(self):
        notebook = notebook_with_outputs(stderr("exit status 0\n"))
        self.assertEqual(find_problems(notebook), [])

    def test_word_panic_without_colon_passes(self):
        notebook = notebook_with_outputs(new_output("stream", name="stdout", text="no panic here\n"))
        self.assertEqual(find_problems(notebook), [])


if __name__ == "__main__":
    unittest.main()
