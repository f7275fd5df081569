"""The schemathesis command line, with `ast.parse` made safe to call from two threads.

CPython 3.11 (the machine's 3.11.7 included) keeps the AST constructor's recursion
depth in state that every thread of the interpreter shares (python/cpython#106905).
When two threads are inside `ast.parse` at once and a garbage collection pass
switches between them, one of them fails with
`SystemError: AST constructor recursion depth mismatch`. With `--workers 2`,
hypothesis parses source from both workers to describe lambdas, and a CI run died
that way on `POST /api/v1/uploads`: a fault of the fuzzer, not of the API, that
failed the run all the same. Parsing one thread at a time removes the race; parses
are rare and short, so the lock costs nothing measurable.

    python tests/fuzz/schemathesis_cli.py run openapi.yaml --url ...
"""

import ast
import sys
import threading

_parse = ast.parse
_parse_lock = threading.Lock()


def _serialised_parse(*args, **kwargs):
    with _parse_lock:
        return _parse(*args, **kwargs)


ast.parse = _serialised_parse

# Imported after the patch so that every module sees the serialised parse.
from schemathesis.cli import schemathesis  # noqa: E402

if __name__ == "__main__":
    sys.exit(schemathesis())
