"""Exact numbers: parsing, canonical text, and an exact arithmetic context.

The rules never use floats. Areas are ``Decimal``; thresholds are ``Fraction``;
headcounts are ``int``. Comparisons are done on ``Fraction`` so that "more than
1/2" and "at least 2/3" are decided exactly, with no rounding anywhere.
"""

from __future__ import annotations

import decimal
from contextlib import contextmanager
from decimal import Decimal
from fractions import Fraction
from typing import Iterator


def parse_decimal(value: object, what: str = "value") -> Decimal:
    """Return ``value`` as a finite ``Decimal``; accepts Decimal, int or str, never float."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{what} must be a Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, str)):
        try:
            result = Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{what} must be a Decimal, int or str, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what} must be finite, got {value!r}")
    return result


def parse_fraction(value: object, what: str = "fraction") -> Fraction:
    """Return ``value`` as a ``Fraction``; accepts Fraction, int, Decimal or str ("2/3")."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{what} must be a Fraction, int, Decimal or str, not {type(value).__name__}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} must be finite, got {value!r}")
        return Fraction(value)
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{what} {value!r} is not a fraction like '2/3'") from None
    raise TypeError(f"{what} must be a Fraction, int, Decimal or str, not {type(value).__name__}")


def decimal_str(value: Decimal) -> str:
    """Canonical text of a Decimal: plain notation, no exponent, no trailing zeros.

    ``Decimal("120.00")`` and ``Decimal("1.2E+2")`` both give ``"120"``, so the
    same quantity always has the same text (this matters for hashes and replay).
    Formatting is done without a context, so nothing is ever rounded.
    """
    if not value.is_finite():
        raise ValueError(f"cannot encode non-finite decimal {value!r}")
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fraction_str(value: Fraction) -> str:
    """Canonical text of a Fraction: ``"2/3"``, ``"1/2"``, or an integer like ``"1"``."""
    return str(value)


def number_to_json(value: int | Decimal) -> int | str:
    """Headcounts stay JSON integers; areas (Decimals) become canonical strings."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return decimal_str(value)
    raise TypeError(f"unexpected number type {type(value).__name__}")


def number_from_json(value: int | str) -> int | Decimal:
    """Inverse of :func:`number_to_json`: ints stay ints, strings become Decimals."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(value, int):
        return value
    return parse_decimal(value)


@contextmanager
def exact_arithmetic() -> Iterator[None]:
    """A decimal context in which any rounding raises instead of happening silently.

    The default context keeps 28 significant digits and would round a very large
    sum quietly; counting must be exact, so ``Inexact`` and ``Rounded`` are trapped.
    """
    with decimal.localcontext() as ctx:
        ctx.prec = 200
        ctx.Emax = decimal.MAX_EMAX
        ctx.Emin = decimal.MIN_EMIN
        ctx.traps[decimal.Inexact] = True
        ctx.traps[decimal.Rounded] = True
        ctx.traps[decimal.InvalidOperation] = True
        yield
