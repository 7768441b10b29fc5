"""WaveCD's one glob dialect: Argo CD's `util/glob.Match` (the Go `gobwas/glob` dialect), for every place
Argo CD matches a glob: project rules (source repositories, destinations, kinds, orphaned-resource
ignores, sync windows), a directory source's include/exclude, ignoreDifferences' group and kind, health
customization keys, and a webhook's manifest-generate-paths.

No Python library matches that dialect, so this one translator to `re` is kept (and is the only one):
`fnmatch` has no `{a,b}` nor `\\` escapes, and `wcmatch` (not a dependency) follows the shell: its path
globbing gives `**` a meaning only as a whole path segment and hides dot files. Argo CD's matches need:
`*` any run of characters except the separators given (none for names, kinds and directory paths, `/`
for repository URLs), `**` any run at all, `?` one non-separator character, `[abc]` / `[a-z]` /
`[!abc]` classes, `{a,b}` alternatives, and `\\` escapes. `glob_match` answers False for a pattern that
does not compile, as Argo CD does; `compile_glob` raises GlobSyntaxError for callers that report it.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["GlobSyntaxError", "compile_glob", "glob_match", "match_any"]


class GlobSyntaxError(ValueError):
    """A pattern that is not a valid glob (an unclosed class or brace, a trailing escape)."""


def _translate(pattern: str, separators: str, pos: int = 0, in_brace: bool = False) -> tuple[str, int]:
    not_sep = f"[^{re.escape(separators)}]" if separators else "."
    out: list[str] = []
    alternatives: list[str] = []
    while pos < len(pattern):
        char = pattern[pos]
        if char == "\\":
            if pos + 1 >= len(pattern):
                raise GlobSyntaxError(f"pattern {pattern!r} ends with an escape")
            out.append(re.escape(pattern[pos + 1]))
            pos += 2
        elif char == "*":
            if pattern.startswith("**", pos):
                out.append(".*")
                pos += 2
            else:
                out.append(f"{not_sep}*")
                pos += 1
        elif char == "?":
            out.append(not_sep)
            pos += 1
        elif char == "[":
            end = pattern.find("]", pos + 2 if pattern.startswith("[!", pos) else pos + 1)
            if end < 0:
                raise GlobSyntaxError(f"pattern {pattern!r} has an unclosed '['")
            body = pattern[pos + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise GlobSyntaxError(f"pattern {pattern!r} has an empty class")
            escaped = "".join(c if c == "-" else re.escape(c) for c in body)
            out.append(f"[^{escaped}{re.escape(separators)}]" if negate else f"[{escaped}]")
            pos = end + 1
        elif char == "{":
            inner, pos = _translate(pattern, separators, pos + 1, in_brace=True)
            out.append(inner)
        elif in_brace and char == ",":
            alternatives.append("".join(out))
            out = []
            pos += 1
        elif in_brace and char == "}":
            alternatives.append("".join(out))
            return "(?:" + "|".join(alternatives) + ")", pos + 1
        else:
            out.append(re.escape(char))
            pos += 1
    if in_brace:
        raise GlobSyntaxError(f"pattern {pattern!r} has an unclosed '{{'")
    return "".join(out), pos


@lru_cache(maxsize=4096)
def compile_glob(pattern: str, separators: str = "") -> re.Pattern[str]:
    """The pattern as an anchored regular expression; GlobSyntaxError when it does not compile."""
    regex, _ = _translate(pattern, separators)
    return re.compile(regex, re.DOTALL)


def glob_match(pattern: str, text: str, separators: str = "") -> bool:
    """Whether `text` matches `pattern` as a whole; `*` alone matches everything (even '')."""
    if pattern == "*":
        return True
    try:
        return compile_glob(pattern, separators).fullmatch(text) is not None
    except GlobSyntaxError:
        return False


def match_any(patterns: list[str], text: str, separators: str = "") -> bool:
    return any(glob_match(p, text, separators) for p in patterns)
