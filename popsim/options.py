"""How an error message names an option: ``--chunk-size 0`` on the command line, ``chunk_size=0``
in Python. Imports nothing.

A message that names options is a :class:`Message` made of text and :class:`Option` parts. An
exception raised with one (``RunError(Message(...))``) reads in Python's wording (``str(e)``),
so a notebook user sees the keyword argument to change; the command line renders the same
exception with :func:`cli_text` and shows its flag. Wrapping an error in another keeps its
message whole: ``RunError(*e.args)``.
"""

from __future__ import annotations

_UNSET = object()


class Option:
    """An option named in a message, with the value given (if any).

    Args:
        name: the keyword argument's name (``"chunk_size"``); the flag is ``--chunk-size``.
        value: the value given; ``True`` for a switch (``force=True`` / ``--force``).
    """

    __slots__ = ("name", "value")

    def __init__(self, name: str, value=_UNSET):
        self.name = name.removeprefix("--").replace("-", "_")
        self.value = value

    def python(self) -> str:
        """``force=True``, ``out='cohort.h5'``, ``size=0``, or the bare name."""
        if self.value is _UNSET:
            return self.name
        v = self.value
        shown = repr(str(v)) if hasattr(v, "__fspath__") else repr(v)
        return f"{self.name}={shown}"

    def cli(self) -> str:
        """``--force``, ``--out cohort.h5``, ``--size 0``, or the bare flag."""
        flag = "--" + self.name.replace("_", "-")
        if self.value is _UNSET or self.value is True:
            return flag
        return f"{flag} {self.value}"

    def __repr__(self) -> str:
        return f"Option({self.python()})"


class Message:
    """Text with options in it, rendered for Python (``str``) or the command line
    (:meth:`render` with ``cli=True``). Parts may be strings, :class:`Option` or messages."""

    __slots__ = ("parts",)

    def __init__(self, *parts):
        self.parts = parts

    def render(self, cli: bool = False) -> str:
        out = []
        for p in self.parts:
            if isinstance(p, Option):
                out.append(p.cli() if cli else p.python())
            elif isinstance(p, Message):
                out.append(p.render(cli))
            else:
                out.append(str(p))
        return "".join(out)

    def __str__(self) -> str:
        return self.render(cli=False)

    def __repr__(self) -> str:
        return f"Message({self.render()!r})"


def cli_text(error: BaseException | str) -> str:
    """An exception's message (or a plain string) in the command line's wording."""
    if isinstance(error, str):
        return error
    first = error.args[0] if len(error.args) == 1 else None
    return first.render(cli=True) if isinstance(first, Message) else str(error)
