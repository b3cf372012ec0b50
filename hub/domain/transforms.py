"""The whitelist of named, pure transforms a mapping may apply, in order.

Mappings are data: a rule names a transform from this table and gives it arguments; nothing a
user writes is ever evaluated as code. A transform returns the new value, or raises
TransformError with a message an admin can act on. None passes through every transform.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import email_validator
import phonenumbers
import pycountry
from nameparser import HumanName


class TransformError(ValueError):
    """A value that a transform cannot turn into what the rule asks for."""


Transform = Callable[..., Any]

TRUE_WORDS = frozenset({"1", "true", "t", "yes", "y", "on", "subscribed", "opt_in", "opted_in"})
FALSE_WORDS = frozenset(
    {"0", "false", "f", "no", "n", "off", "unsubscribed", "opt_out", "opted_out", ""}
)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | Decimal):
        return str(value)
    raise TransformError(f"expected text, got {type(value).__name__}")


def trim(value: Any) -> str:
    return _text(value).strip()


def lower(value: Any) -> str:
    return _text(value).lower()


def upper(value: Any) -> str:
    return _text(value).upper()


def title(value: Any) -> str:
    return _text(value).title()


def email(value: Any) -> str:
    """Syntax-checked, lower-cased address: the form identities are matched on.

    Local parts are case-sensitive in theory and never in practice; lower-casing the whole
    address is what every CRM and email tool does when it deduplicates.
    """
    text = _text(value).strip()
    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise TransformError(f"not a valid email address: {exc}") from None
    return str(result.normalized).lower()


def phone_e164(value: Any, region: str | None = None) -> str:
    """E.164 (+14155550134); national numbers need the region they were written in."""
    text = _text(value).strip()
    if region is not None and not isinstance(region, str):
        raise TransformError(f"phone region must be a country code, not {region!r}")
    region_code = (region or "").upper() or None
    try:
        number = phonenumbers.parse(text, region_code)
    except phonenumbers.NumberParseException as exc:
        raise TransformError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise TransformError("not a possible phone number for its country")
    result = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # An identity must read back as itself, or one person gets two phone identities.
    again = phonenumbers.format_number(phonenumbers.parse(result, None),
                                       phonenumbers.PhoneNumberFormat.E164)
    if again != result:
        raise TransformError("not a valid phone number for its country")
    return result


NAME_PARTS = ("given", "family", "first", "middle", "last")


def split_name(value: Any, part: str = "first") -> str | None:
    """One part of a full name; understands "Last, First", titles, suffixes and particles.
    `given` (first and middle names) and `family` (last name and suffix) are what a CRM's
    first and last name fields hold: joined again they give the name back, so a tool that
    keeps the two apart and one that keeps the full name agree (decision 0021)."""
    if part not in NAME_PARTS:
        raise TransformError(f"split_name part must be one of {', '.join(NAME_PARTS)}, "
                             f"not {part!r}")
    return _name_parts(_text(value).strip())[part] or None


@lru_cache(maxsize=4096)
def _name_parts(text: str) -> dict[str, str]:
    """Parsed once per name: a mapping usually asks for the first and the last part of the
    same full name. nameparser costs ~0.1 ms a name, the slowest step of a sync; most names
    are two plain words that none of its word lists (titles, suffixes, particles, ...) know,
    which it splits into first and last, so those take `_plain_pair` (a differential test
    holds the two to the same answers)."""
    pair = _plain_pair(text)
    if pair is not None:
        first, last = pair
        return {"first": first, "middle": "", "last": last, "given": first, "family": last}
    name = HumanName(text)
    parts = {p: str(getattr(name, p)).strip() for p in ("first", "middle", "last", "suffix")}
    return {"first": parts["first"], "middle": parts["middle"], "last": parts["last"],
            "given": " ".join(filter(None, (parts["first"], parts["middle"]))),
            "family": " ".join(filter(None, (parts["last"], parts["suffix"])))}


def _plain_pair(text: str) -> tuple[str, str] | None:
    words = text.split()
    if len(words) != 2 or not all(w.isalpha() and _latin(w) for w in words):
        return None  # other scripts have rules of their own there (a Chinese surname first)
    if any(w.lower() in _NAME_WORDS or any(p.search(w) for p in _NAME_PATTERNS) for w in words):
        return None
    return words[0], words[1]


def _latin(word: str) -> bool:
    return word.isascii() or all(ord(c) < 0x250 for c in word)  # up to Latin Extended-B


def _name_words() -> frozenset[str]:
    """Every word nameparser treats specially, lower case (its lists hold them so)."""
    from nameparser.config import CONSTANTS

    lists = ("titles", "first_name_titles", "suffix_acronyms", "suffix_not_acronyms",
             "suffix_acronyms_ambiguous", "prefixes", "non_first_name_prefixes",
             "conjunctions", "bound_first_names")
    return frozenset(w.lower() for name in lists for w in getattr(CONSTANTS, name))


def _name_patterns() -> tuple[re.Pattern[str], ...]:
    """nameparser's patterns for words it reads specially (roman numerals as suffixes,
    patronymics), case-insensitive as it applies them."""
    from nameparser.config import CONSTANTS

    names = ("roman_numeral", "east_slavic_patronymic", "east_slavic_patronymic_cyrillic",
             "turkic_patronymic_marker", "turkic_patronymic_marker_cyrillic")
    return tuple(re.compile(CONSTANTS.regexes.get(n).pattern, re.IGNORECASE) for n in names)


_NAME_WORDS = _name_words()
_NAME_PATTERNS = _name_patterns()


def join(value: Any, separator: str = " ") -> str:
    if not isinstance(separator, str):  # e.g. read from the record with {path: ...}
        raise TransformError(f"join separator must be text, not {separator!r}")
    if isinstance(value, list | tuple):
        return separator.join(_text(v).strip() for v in value if v not in (None, ""))
    return _text(value)


def split(value: Any, separator: str = ",") -> list[str]:
    if not isinstance(separator, str) or not separator:
        raise TransformError("split needs a non-empty separator")
    if isinstance(value, list):
        return [_text(v).strip() for v in value if v is not None and _text(v).strip()]
    return [part.strip() for part in _text(value).split(separator) if part.strip()]


def country_iso2(value: Any) -> str:
    """ISO 3166-1 alpha-2 from a code (alpha-2 or alpha-3) or an English country name."""
    text = _text(value).strip()
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        raise TransformError(f"unknown country {text!r}") from None


def datetime_utc(value: Any, assume: str = "UTC") -> datetime:
    """ISO-8601 text to an aware UTC datetime; text without an offset is taken as `assume`."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = _text(value).strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise TransformError(f"not an ISO-8601 date or time: {text!r}") from None
    if parsed.tzinfo is None:
        if assume != "UTC":
            raise TransformError("naive times are only supported as UTC")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise TransformError(f"{value!r} is outside the range of dates") from None


def epoch_utc(value: Any, unit: str = "s") -> datetime:
    divisor = {"s": 1, "ms": 1_000}.get(unit)
    if divisor is None:
        raise TransformError(f"epoch unit must be s or ms, not {unit!r}")
    try:
        seconds = float(_text(value)) / divisor
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise TransformError(f"not an epoch time: {value!r}") from None


def number(value: Any, places: int | None = None) -> float:
    """A decimal number; money is rounded to its minor unit with `places`."""
    parsed = _decimal(value)
    try:
        if places is not None:
            parsed = round(parsed, int(places))
        result = float(parsed)
    except (InvalidOperation, ValueError, TypeError, OverflowError):
        raise TransformError(f"cannot round {value!r} to {places!r} places") from None
    if not math.isfinite(result):
        raise TransformError(f"{value!r} is too large")
    return result


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TransformError("expected a number, got a boolean")
    try:
        parsed = Decimal(_text(value).strip().replace(",", ""))
    except InvalidOperation:
        raise TransformError(f"not a number: {value!r}") from None
    if not parsed.is_finite():
        raise TransformError(f"not a finite number: {value!r}")
    return parsed


def integer(value: Any) -> int:
    parsed = _decimal(value)
    if parsed != parsed.to_integral_value() or abs(parsed) >= 10**38:
        raise TransformError(f"not a whole number in range: {value!r}")
    return int(parsed)


def cents(value: Any) -> float:
    """Minor units (Stripe's amount_total=1999) to a decimal amount (19.99)."""
    return float(Decimal(integer(value)) / 100)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = _text(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise TransformError(f"cannot read {value!r} as yes or no")


def value_map(value: Any, map: dict[str, Any], default: Any = ...) -> Any:  # noqa: A002
    """Lookup table; values not in the table are an error unless a default is given."""
    if not isinstance(map, dict):
        raise TransformError(f"value_map needs a table of vendor value: canonical value, "
                             f"not {type(map).__name__}")
    key = _text(value).strip()
    if key in map:
        return map[key]
    folded = {str(k).lower(): v for k, v in map.items()}
    if key.lower() in folded:
        return folded[key.lower()]
    if default is not ...:
        return default
    raise TransformError(f"{key!r} is not in the value map")


def sha256(value: Any, salt: str = "") -> str:
    """Pseudonymise a value (for exports); the salt keeps hashes unlinkable across tenants."""
    return hashlib.sha256((salt + _text(value)).encode("utf-8", "surrogatepass")).hexdigest()


TRANSFORMS: dict[str, Transform] = {
    "trim": trim,
    "lower": lower,
    "upper": upper,
    "title": title,
    "email": email,
    "phone_e164": phone_e164,
    "split_name": split_name,
    "join": join,
    "split": split,
    "country_iso2": country_iso2,
    "datetime_utc": datetime_utc,
    "epoch_utc": epoch_utc,
    "number": number,
    "integer": integer,
    "cents": cents,
    "boolean": boolean,
    "value_map": value_map,
    "sha256": sha256,
}
