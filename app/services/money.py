"""Money is an integer number of fen (1/100 yuan) everywhere; these helpers are its only edge.

Stripe's minor unit for CNY is also the fen, so the stored integer is sent as it is.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

FEN_PER_YUAN = 100
FEN_PER_WAN = 10_000 * FEN_PER_YUAN
#: The largest amount an INTEGER column holds (¥21,474,836.47): prices and filters stay below.
MAX_FEN = 2**31 - 1

_YUAN_INPUT = re.compile(r"^\d{1,9}(\.\d{1,2})?$", re.ASCII)


class MoneyFormatError(ValueError):
    pass


def parse_yuan(text: str, max_fen: int = MAX_FEN) -> int:
    """Parse what a person types as a price ("12.8", "¥1,234.50", "12元") into fen.

    Refuses negatives, more than two decimals, amounts above `max_fen` and anything that is not
    a number, so that a typo never becomes a silently rounded (or overflowing) price.
    """
    # NFKC turns the full-width digits and point a Chinese input method types (１２．５) into ASCII.
    cleaned = unicodedata.normalize("NFKC", str(text)).strip().replace(",", "").removeprefix("¥")
    cleaned = cleaned.removesuffix("元").strip()
    if not _YUAN_INPUT.match(cleaned):
        raise MoneyFormatError(text)
    try:
        fen = int(Decimal(cleaned) * FEN_PER_YUAN)
    except InvalidOperation as exc:  # pragma: no cover - the regex already guarantees digits
        raise MoneyFormatError(text) from exc
    if fen > max_fen:
        raise MoneyFormatError(text)
    return fen


def format_yuan(fen: int | None) -> str:
    """¥1,234.50; negative amounts (refunds) as -¥12.00."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def format_wan(fen: int | None) -> str:
    """Large sums the way officials read them: 53.00万元 (rounded half up to 0.01 万)."""
    if fen is None:
        return ""
    wan = (Decimal(fen) / FEN_PER_WAN).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    return f"{wan:,}万元"


def price_per(fen: int, amount: Decimal | int, per: Decimal | int) -> int:
    """Unit price of `per` when `amount` costs `fen`, rounded half up to the fen.

    e.g. a 250 g box at ¥58.00 is price_per(5800, 250, 500) = 11600 per 斤.
    """
    exact = Decimal(fen) * Decimal(per) / Decimal(amount)
    return int(exact.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def line_total(unit_price_fen: int, quantity: Decimal) -> int:
    """What a line costs: unit price x quantity, rounded half up to the fen.

    The one rounding rule for every bought quantity (2.35 kg at ¥18.80/kg is ¥44.18).
    """
    exact = Decimal(unit_price_fen) * Decimal(quantity)
    return int(exact.quantize(Decimal(1), rounding="ROUND_HALF_UP"))
