"""The records block execution handles per tx, read and written in one pass over their
bytes (compiled with mypyc): txs of the common kinds, and account records.

Each function gives exactly what the general codec (:mod:`chain.codec` and the types'
``from_cbor``/``to_cbor``) gives, or defers to it:

- :func:`read_tx` is :func:`chain.types.decode` of a :class:`~chain.types.Tx` for the
  kinds a chain carries by the thousand (transfers, bonds, unbonds, impact attestations
  and endorsements), without building the generic CBOR tree and encoding it again for
  the canonical check (§2). It accepts exactly the canonical encodings of such txs and
  returns ``None`` for anything else (a validator registration, a non-minimal integer,
  a wrong length, a byte too many or too few), which the general decoder then accepts
  or refuses with its own message;
- :func:`read_account` reads an account record ``[balance, nonce]`` (``None``: not two
  unsigned integers in their shortest form), :func:`encode_account` writes one.

Property tests compare each with the general codec, on valid and on damaged bytes.
"""

from __future__ import annotations

from typing import Final

from chain.codec import MAX_UINT64, dumps
from chain.sizes import ADDRESS_LEN, HASH_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN
from chain.types import Account, Bond, PoiAttest, PoiEndorse, Transfer, Tx, TxBody, TxKind, Unbond

_ARRAY: Final = 0x80
"""An array's head byte, plus its length (below 24)."""
_BYTES: Final = 0x40
"""A byte string's head byte, plus its length (below 24)."""
_BYTES_1: Final = 0x58
"""A byte string's head byte when a one-byte length follows (24 to 255)."""
_TRANSFER: Final = int(TxKind.TRANSFER)
_BOND: Final = int(TxKind.BOND)
_UNBOND: Final = int(TxKind.UNBOND)
_POI_ATTEST: Final = int(TxKind.POI_ATTEST)
_POI_ENDORSE: Final = int(TxKind.POI_ENDORSE)


def read_uint(data: bytes, at: int) -> tuple[int, int]:
    """The unsigned integer at ``at`` in its shortest form, and where it ends; ``(0,
    -1)`` if there is none."""
    if at >= len(data):
        return 0, -1
    head = data[at]
    if head < 24:
        return head, at + 1
    size = 1 if head == 24 else 2 if head == 25 else 4 if head == 26 else 8 if head == 27 else 0
    end = at + 1 + size
    if size == 0 or end > len(data):
        return 0, -1
    value = int.from_bytes(data[at + 1:end], "big")
    # Shortest form: a value that fits a smaller head must use it.
    if value < (24 if size == 1 else 1 << (4 * size)):
        return 0, -1
    return value, end


def put_uint(out: bytearray, value: int) -> None:
    """Append ``value`` (``0 <= value < 2**64``) in its shortest form."""
    if value < 24:
        out.append(value)
    elif value < 0x100:
        out.append(24)
        out.append(value)
    elif value < 0x10000:
        out.append(25)
        out += value.to_bytes(2, "big")
    elif value < 0x100000000:
        out.append(26)
        out += value.to_bytes(4, "big")
    else:
        out.append(27)
        out += value.to_bytes(8, "big")


class _Reader:
    """A cursor over canonical CBOR; a read that finds anything else marks it failed
    (``ok`` false) and returns 0 or empty bytes, which the caller then discards."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.ok = True

    def head(self, byte: int) -> None:
        """The next byte must be ``byte`` (an array's or a short byte string's head)."""
        data, at = self.data, self.at
        if at < len(data) and data[at] == byte:
            self.at = at + 1
        else:
            self.ok = False

    def bstr(self, length: int) -> bytes:
        """A byte string of exactly ``length`` bytes, with its shortest head."""
        if length < 24:
            self.head(_BYTES + length)
        else:
            self.head(_BYTES_1)
            self.head(length)
        at = self.at
        end = at + length
        if not self.ok or end > len(self.data):
            self.ok = False
            return b""
        self.at = end
        return self.data[at:end]

    def uint(self) -> int:
        """An unsigned integer in its shortest form."""
        value, end = read_uint(self.data, self.at)
        if end < 0:
            self.ok = False
            return 0
        self.at = end
        return value


def _body(r: _Reader, kind: int) -> TxBody | None:
    if kind == _TRANSFER:
        r.head(_ARRAY + 2)
        to = r.bstr(ADDRESS_LEN)
        return Transfer(to, r.uint())
    if kind == _BOND:
        r.head(_ARRAY + 1)
        return Bond(r.uint())
    if kind == _UNBOND:
        r.head(_ARRAY + 1)
        return Unbond(r.uint())
    if kind == _POI_ENDORSE:
        r.head(_ARRAY + 2)
        attestation = r.bstr(HASH_LEN)
        return PoiEndorse(attestation, r.uint())
    if kind == _POI_ATTEST:
        r.head(_ARRAY + 4)
        epoch = r.uint()
        root = r.bstr(HASH_LEN)
        r.head(_ARRAY + 5)
        d0 = r.uint()
        d1 = r.uint()
        d2 = r.uint()
        d3 = r.uint()
        d4 = r.uint()
        return PoiAttest(epoch, root, (d0, d1, d2, d3, d4), r.uint())
    return None


def read_tx(data: bytes) -> Tx | None:
    """``data`` decoded as a tx when it is the canonical encoding of a transfer, bond,
    unbond, attestation or endorsement; ``None`` otherwise (see the module's docstring)."""
    r = _Reader(data)
    r.head(_ARRAY + 6)
    kind = r.uint()
    sender = r.bstr(PUBLIC_KEY_LEN)
    nonce = r.uint()
    fee = r.uint()
    if not r.ok:
        return None
    body = _body(r, kind)
    signature = r.bstr(SIGNATURE_LEN)
    if body is None or not r.ok or r.at != len(data):
        return None
    return Tx(sender, nonce, fee, body, signature)


def read_account(data: bytes) -> Account | None:
    """The account of a record of two unsigned integers in their shortest form, else
    ``None`` (the general decoder then decides)."""
    if not data or data[0] != _ARRAY + 2:
        return None
    balance, at = read_uint(data, 1)
    if at < 0:
        return None
    nonce, at = read_uint(data, at)
    if at != len(data):
        return None
    return Account(balance, nonce)


def encode_account(account: Account) -> bytes:
    """The record of ``account``: ``dumps(account.to_cbor())``."""
    balance, nonce = account.balance, account.nonce
    if not (0 <= balance <= MAX_UINT64 and 0 <= nonce <= MAX_UINT64):
        return dumps(account.to_cbor())
    out = bytearray()
    out.append(_ARRAY + 2)
    put_uint(out, balance)
    put_uint(out, nonce)
    return bytes(out)
