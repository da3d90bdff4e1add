"""Names and hashes: which names may be used, pset hashes, seeds and content digests.

A parameter set (pset) is a flat dict name → scalar. Its identity is the
hash of its canonical JSON (written by :mod:`recorder.codec.canonical`).
"""

from __future__ import annotations

import hashlib
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable

from ..errors import NameRefused

__all__ = [
    "PSET_HASH_LENGTH",
    "RESERVED_NAMES",
    "is_utf8",
    "claim_names",
    "check_name",
    "check_experiment",
    "not_text",
    "is_not_text",
    "NOT_TEXT",
    "DEFAULT_IGNORABLE",
    "pset_hash",
    "pset_identity",
    "pset_identities",
    "run_seed",
    "text_digest",
]

#: Hex characters kept of the SHA-256 of a pset's canonical JSON (80 bits:
#: a collision among 10^8 psets has a probability below 10^-8, and a
#: collision is detected, not silently merged, when the psets differ).
PSET_HASH_LENGTH = 20

#: Columns of the wide per-experiment view besides parameters and results.
RESERVED_NAMES = frozenset(
    {"run_id", "status", "time_start", "duration_s", "env_sha", "rerun_of", "tags", "exec_host", "exec_pid", "pset_seq"}
)

_sha256 = hashlib.sha256


#: Unicode categories that are not visible text: controls (C0, DEL, C1 with U+0085 and the CSI U+009B),
#: formats (bidi overrides like U+202E, zero-width characters, the BOM), line and paragraph
#: separators, lone surrogates, unassigned code points and noncharacters (Cn: no font shows them,
#: and a later Unicode may give them any meaning), private use (Co: what they show is a font's
#: choice). A name holding one can hide or reorder what a terminal shows.
NOT_TEXT = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn", "Co"})

#: Unicode's Default_Ignorable_Code_Point ranges (first, last), from DerivedCoreProperties.txt
#: (unchanged from Unicode 6.0 to 15.1): code points a renderer shows as nothing. Most are Cf or
#: Cn (already in :data:`NOT_TEXT`), but the Hangul fillers are letters (Lo) and the combining
#: grapheme joiner and variation selectors are marks (Mn), so ``"exp"`` and ``"exp\u3164"`` would
#: look alike. Ordinary combining marks (a decomposed "é", ``"e\u0301"``) are text and stay allowed.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x061C, 0x061C),  # Arabic letter mark
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors, vowel separator
    (0x200B, 0x200F),  # zero-width space, joiners, directional marks
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated formats
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors 1-16
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol beams and phrases
    (0xE0000, 0xE0FFF),  # tags, variation selectors 17-256, reserved
)
# The ranges as sorted bounds [first, last + 1, ...]: a code point is ignorable when it falls
# after an odd number of them (one C-level bisect, and nothing built at import).
_IGNORABLE_BOUNDS = tuple(bound for first, last in DEFAULT_IGNORABLE for bound in (first, last + 1))


def _ignorable(c: str) -> bool:
    return bisect_right(_IGNORABLE_BOUNDS, ord(c)) % 2 == 1


def is_not_text(c: str) -> bool:
    """Return whether the character ``c`` is not visible text (:data:`NOT_TEXT`, :data:`DEFAULT_IGNORABLE`)."""
    return unicodedata.category(c) in NOT_TEXT or _ignorable(c)


def not_text(text: str) -> str | None:
    """Return the first character of ``text`` that is not visible text (see :func:`is_not_text`), or None."""
    if text.isascii() and text.isprintable():  # the common case, without a call per character
        return None
    for c in text:
        if unicodedata.category(c) in NOT_TEXT or _ignorable(c):
            return c
    return None


def _refuse_characters(what: str, name: str) -> None:
    """Refuse a name holding a character that is not visible text, naming which kind it is."""
    bad = not_text(name)
    if bad is None:
        return
    shown = ascii(bad)[1:-1]
    category = unicodedata.category(bad)
    if category == "Cs":
        raise NameRefused(f"{what} name {name!a} holds a lone surrogate ({shown}), which is not text; fix its encoding")
    if category not in NOT_TEXT:
        kind = "the invisible character"  # a Hangul filler, variation selector, grapheme joiner, reserved
    elif category == "Cn":
        kind = "the unassigned code point or noncharacter"
    elif category == "Co":
        kind = "the private-use character"
    else:
        kind = "the control character"
    raise NameRefused(
        f"{what} name {name!a} holds {kind} {shown} (names may not hold a newline, tab, NUL, escape, "
        "bidi override, zero-width, invisible, separator, unassigned or private-use character), which "
        "cannot name a column and can disguise what a terminal shows; rename it"
    )


def check_name(what: str, name: object) -> str:
    """Return ``name`` if it may name a parameter, config value or result.

    :param what: what the name is for, used in the error message
        ("parameter", "result", ...).
    :raises NameRefused: when the name is not a non-empty string, holds a
        character that is not visible text (a control, format, separator,
        invisible, unassigned or private-use character, or a lone surrogate;
        see :func:`is_not_text`), starts with ``_`` (reserved for
        recorder's own columns) or is one of the run columns of the wide view
        (:data:`RESERVED_NAMES`).
    """
    if type(name) is not str or not name:
        raise NameRefused(f"{what} name {name!r} is not a non-empty string")
    _refuse_characters(what, name)
    if name[0] == "_":
        raise NameRefused(
            f"{what} name {name!r} starts with '_', which recorder reserves for "
            f"its own columns; rename it (for example {name.lstrip('_') or 'x'!r})"
        )
    if name.lower() in RESERVED_NAMES:
        raise NameRefused(
            f"{what} name {name!r} is a column recorder adds to every run "
            f"({', '.join(sorted(RESERVED_NAMES))}); rename it (for example {name + '_'!r})"
        )
    return name


def check_experiment(name: object) -> str:
    """Return ``name`` if it may name an experiment.

    An experiment's name names its SQL view and is typed in commands and
    scripts, and people build file and folder names from it (recorder's own
    folders never come from it), so besides the rules of :func:`check_name`
    for characters it must not look like a path: refused here, it is safe
    wherever it ends up.

    :raises NameRefused: when the name is not a non-empty string, is only
        whitespace, holds a character that is not visible text, holds ``/``
        or ``\\``, starts with ``.``, a Windows drive (``C:``), ``_`` or
        ``sqlite_``.
    """
    if type(name) is not str or not name.strip():
        raise NameRefused(f"experiment name {name!r} is not a non-empty string")
    _refuse_characters("experiment", name)
    if "/" in name or "\\" in name or name.startswith(".") or (len(name) > 1 and name[1] == ":"):
        raise NameRefused(
            f"experiment name {name!r} looks like a path (it holds '/' or '\\', or starts with '.' or a "
            "drive such as 'C:'), and experiment names end up in commands and file names; rename it "
            f"(for example {name.replace('/', '-').replace(chr(92), '-').lstrip('.').replace(':', '-') or 'x'!r})"
        )
    if name.startswith("_") or name.lower().startswith("sqlite_"):
        raise NameRefused(f"experiment name {name!r} is reserved (it starts with '_' or 'sqlite_'); rename it")
    return name


def claim_names(what: str, names: Iterable[str], taken: dict[str, str]) -> None:
    """Check names against those already taken in a run, ignoring case as SQL does; then take them.

    :param taken: lower-cased name → name, for the run's parameters and the
        results logged so far; updated in place.
    :raises NameRefused: for an invalid or reserved name, or one taken already
        (a parameter's, or a result's logged before).
    """
    claimed: dict[str, str] = {}
    for name in names:
        if type(name) is not str or not name or name[0] == "_" or not name.isascii() or not name.isprintable():
            check_name(what, name)
        key = name.lower()
        if key in RESERVED_NAMES:
            check_name(what, name)
        other = taken.get(key) or claimed.get(key)
        if other is not None:
            same = "" if other == name else f" (as {other!r}; SQL does not tell case apart)"
            raise NameRefused(f"{what} {name!r} is already used in this run{same}; give it another name")
        claimed[key] = name
    taken.update(claimed)


def is_utf8(text: str) -> bool:
    """Return whether a str can be written as UTF-8 (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def pset_hash(canonical_json: str) -> str:
    """Return the pset hash: the first :data:`PSET_HASH_LENGTH` hex digits of SHA-256."""
    return _sha256(canonical_json.encode()).hexdigest()[:PSET_HASH_LENGTH]


def run_seed(pset_hash_: str, experiment_seed: int | None = None) -> int:
    """Return the deterministic seed of a run: 31 bits from the pset hash and the experiment seed.

    31 bits so that it is accepted everywhere (``numpy.random.seed``,
    ``random.seed``, ``jax.random.PRNGKey``) and fits a signed 32-bit int.
    """
    digest = _sha256((_seed_prefix(experiment_seed) + pset_hash_).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _seed_prefix(experiment_seed: int | None) -> str:
    return ("" if experiment_seed is None else str(int(experiment_seed))) + ":"


def pset_identity(experiment_seed: int | None) -> Callable[[str], tuple[str, int]]:
    """Return a function giving ``(pset_hash, run_seed)`` of a pset's canonical JSON, for one experiment seed.

    It gives what :func:`pset_hash` and :func:`run_seed` give, in one call
    (a sweep makes one per pset, so the calls saved are worth having).
    """
    prefix = _seed_prefix(experiment_seed)

    def identity(canonical_json: str) -> tuple[str, int]:
        hash_ = _sha256(canonical_json.encode()).hexdigest()[:PSET_HASH_LENGTH]
        return hash_, int.from_bytes(_sha256((prefix + hash_).encode()).digest()[:4], "big") & 0x7FFFFFFF

    return identity


def pset_identities(experiment_seed: int | None) -> Callable[[list[str]], tuple[list[str], list[int]]]:
    """Return a function giving the pset hashes and run seeds of many psets' canonical JSON at once.

    What :func:`pset_identity` gives pset by pset, in two comprehensions
    (a vectorised sweep makes a block of psets at a time).
    """
    import struct
    from operator import methodcaller

    prefix = _seed_prefix(experiment_seed)
    sha, hexdigest, digest, encode = _sha256, methodcaller("hexdigest"), methodcaller("digest"), methodcaller("encode")

    def identities(texts: list[str]) -> tuple[list[str], list[int]]:
        # Each step a map in C; the seeds are the first 4 bytes of each 32-byte digest, read in one unpack.
        hashes = [h[:PSET_HASH_LENGTH] for h in map(hexdigest, map(sha, map(encode, texts)))]
        digests = b"".join(map(digest, map(sha, map(encode, map(prefix.__add__, hashes)))))
        seeds = [word & 0x7FFFFFFF for word in struct.unpack(f">{8 * len(hashes)}I", digests)[::8]]
        return hashes, seeds

    return identities


def text_digest(text: str) -> str:
    """Return the SHA-256 hex digest of a text (how texts are stored once by content)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
