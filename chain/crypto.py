"""Ed25519 signatures, sign bytes and addresses (§1, §2): the one adapter for signature libraries.

PyNaCl (libsodium) does every signature and verification: it is the fastest Ed25519 on
this machine and its cffi calls release the GIL, so :func:`verify_many` verifies on
every core from threads. ``cryptography`` is used only to read and write PKCS#8 key
files, which this module takes and returns as bytes: nothing here touches a file.

Verification follows libsodium's rules: RFC 8032, and also refusal of a non-canonical
``S``, a small-order ``R`` and a non-canonical or small-order public key. Every node
applies exactly these rules because every node verifies through this module.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

from chain.errors import InvalidSignature
from chain.sizes import ADDRESS_LEN, PUBLIC_KEY_LEN, SEED_LEN, SIGNATURE_LEN

DOMAIN_TX = b"bizra/tx/v1"
DOMAIN_PROPOSAL = b"bizra/proposal/v1"
DOMAIN_VOTE = b"bizra/vote/v1"

SignedItem = tuple[bytes, bytes, bytes]


class BatchVerifier(Protocol):
    """Starts checking a batch of ``(public_key, message, signature)``; the future's
    result is one verdict per item, as :func:`verify_many_in_background` gives."""

    def __call__(self, items: Sequence[SignedItem]) -> Future[list[bool]]: ...
"""``(public_key, message, signature)``: one check of a batch."""

INLINE_BATCH = 16
"""Batches smaller than this are verified on the calling thread: handing them to the
pool costs more than it saves (measured: 8 signatures take 10% longer on the pool, 16
take 40% less on two cores)."""

_WORKERS = os.cpu_count() or 1
# Several chunks per worker keep every core busy when batches of other callers share
# the pool; each chunk still holds enough signatures to amortise its hand-off.
_CHUNKS_PER_WORKER = 4
_MIN_CHUNK = 8
_POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="bizra-verify")


def sign_bytes(domain: bytes, chain_id: str, unsigned_encoding: bytes) -> bytes:
    """``domain || 0x00 || chain_id (UTF-8) || 0x00 || unsigned_encoding`` (§2).

    Domain tags and chain ids contain no zero byte (genesis refuses such chain ids), so
    the framing is unambiguous and a signature made for one kind of object or one chain
    verifies for no other.
    """
    return b"".join((domain, b"\x00", chain_id.encode("utf-8"), b"\x00", unsigned_encoding))


class PrivateKey:
    """An Ed25519 private key, held as its 32-byte RFC 8032 seed.

    Its ``repr`` shows only the public key, so a key that ends up in a log or a
    traceback does not leak.
    """

    __slots__ = ("_public_key", "_secret", "_seed")

    _seed: bytes
    _public_key: bytes
    _secret: bytes

    def __init__(self, seed: bytes) -> None:
        """Prefer :meth:`from_seed` or :meth:`generate`; raises InvalidSignature unless
        ``seed`` is 32 bytes."""
        if type(seed) is not bytes or len(seed) != SEED_LEN:
            raise InvalidSignature(f"an Ed25519 seed is {SEED_LEN} bytes")
        public_key, secret = crypto_sign_seed_keypair(seed)
        self._seed = seed
        self._public_key = public_key
        self._secret = secret

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from the operating system's random source."""
        return cls(secrets.token_bytes(SEED_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """The key of a 32-byte seed; raises InvalidSignature for any other length."""
        return cls(seed)

    @property
    def seed(self) -> bytes:
        """The 32-byte seed: the whole secret."""
        return self._seed

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message`` (deterministic, RFC 8032)."""
        return crypto_sign(message, self._secret)[:SIGNATURE_LEN]

    def __repr__(self) -> str:
        return f"PrivateKey(public_key={self._public_key.hex()})"


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``message``.

    Never raises: a key or signature of the wrong length, or an argument that is not
    ``bytes``, is simply not valid.
    """
    try:
        if len(public_key) != PUBLIC_KEY_LEN or len(signature) != SIGNATURE_LEN:
            return False
        # PyNaCl has no detached verify; opening ``signature || message`` is the same
        # check and the fastest path it offers (the copy is negligible beside the curve
        # math: 54 µs against 105 µs for OpenSSL through ``cryptography``).
        crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, TypeError):
        return False
    return True


def _verify_chunk(items: Sequence[SignedItem]) -> list[bool]:
    return [verify(public_key, message, signature) for public_key, message, signature in items]


def _split(items: Sequence[SignedItem]) -> list[Sequence[SignedItem]]:
    count = min(_WORKERS * _CHUNKS_PER_WORKER, len(items) // _MIN_CHUNK)
    if count > _WORKERS:
        # A whole number of chunks per worker, so no core idles at the end of a batch.
        count -= count % _WORKERS
    count = max(1, count)
    size, extra = divmod(len(items), count)
    chunks = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


def verify_many_in_background(items: Sequence[SignedItem]) -> Future[list[bool]]:
    """Start verifying ``(public_key, message, signature)`` triples on the verify pool.

    Returns at once; the future's result is what :func:`verify_many` would return. The
    caller can do other work meanwhile (e.g. execute a block while its signatures are
    checked) and then wait with ``future.result()``.
    """
    if not items:
        done: Future[list[bool]] = Future()
        done.set_result([])
        return done
    parts = [_POOL.submit(_verify_chunk, chunk) for chunk in _split(items)]
    combined: Future[list[bool]] = Future()
    remaining = len(parts)
    lock = threading.Lock()

    # Combining in a callback rather than in a pool task means no pool thread ever
    # waits for another, so concurrent callers cannot starve the pool into a deadlock.
    def part_done(_: Future[list[bool]]) -> None:
        nonlocal remaining
        with lock:
            remaining -= 1
            if remaining:
                return
        results: list[bool] = []
        for part in parts:
            error = part.exception()
            if error is not None:
                combined.set_exception(error)
                return
            results.extend(part.result())
        combined.set_result(results)

    for part in parts:
        part.add_done_callback(part_done)
    return combined


def verify_many(items: Sequence[SignedItem]) -> list[bool]:
    """``[verify(*item) for item in items]``, computed on every core.

    Batches of at least :data:`INLINE_BATCH` triples are split into chunks verified in
    parallel by a process-wide pool of one thread per core (libsodium runs without the
    GIL); smaller batches are verified on the calling thread. Blocks until done; never
    raises for invalid keys or signatures.
    """
    if len(items) < INLINE_BATCH:
        return _verify_chunk(items)
    return verify_many_in_background(items).result()


def address_of(public_key: bytes) -> bytes:
    """The account address of a public key: the first 20 bytes of its SHA-256 (§1).

    Raises InvalidSignature unless ``public_key`` is 32 bytes.
    """
    if len(public_key) != PUBLIC_KEY_LEN:
        raise InvalidSignature(f"a public key is {PUBLIC_KEY_LEN} bytes, not {len(public_key)}")
    return hashlib.sha256(public_key).digest()[:ADDRESS_LEN]


_BULK = 1024
"""Hashes handled per hold of :class:`VerifiedCache`'s lock by its bulk methods."""


class VerifiedCache:
    """The hashes of txs whose signatures were verified, bounded, least recently used out.

    Both adding and finding a hash make it the most recently used; once more than
    ``capacity`` hashes are held, the least recently used one is forgotten (it is then
    just verified again if it comes back). Every operation holds one internal lock for
    O(1) time (the bulk ones, :meth:`add_all` and :meth:`unknown`, for ``_BULK`` hashes
    at a time), so the cache may be shared by the event loop and worker threads: each
    hash's lookup or addition is atomic, though a hash found may be evicted by another
    thread's addition right after.
    """

    __slots__ = ("_capacity", "_hashes", "_lock")

    def __init__(self, capacity: int = 200_000) -> None:
        """Raises ValueError unless ``capacity`` is at least 1."""
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._hashes: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, tx_hash: bytes) -> None:
        """Remember that ``tx_hash``'s signature is valid."""
        with self._lock:
            self._hashes[tx_hash] = None
            self._hashes.move_to_end(tx_hash)
            if len(self._hashes) > self._capacity:
                self._hashes.popitem(last=False)

    def add_all(self, tx_hashes: Sequence[bytes]) -> None:
        """:meth:`add` each of ``tx_hashes``, in order (the lock taken once per
        ``_BULK`` of them, so no call holds it long)."""
        hashes = self._hashes
        for start in range(0, len(tx_hashes), _BULK):
            with self._lock:
                for h in tx_hashes[start:start + _BULK]:
                    hashes[h] = None
                    hashes.move_to_end(h)
                while len(hashes) > self._capacity:
                    hashes.popitem(last=False)

    def unknown(self, tx_hashes: Sequence[bytes]) -> list[int]:
        """The positions in ``tx_hashes`` of those not held; those held become the most
        recently used, as ``in`` makes them (the lock taken as :meth:`add_all` takes it)."""
        hashes = self._hashes
        missing = []
        for start in range(0, len(tx_hashes), _BULK):
            with self._lock:
                for i, h in enumerate(tx_hashes[start:start + _BULK], start):
                    if h in hashes:
                        hashes.move_to_end(h)
                    else:
                        missing.append(i)
        return missing

    def discard(self, tx_hash: bytes) -> None:
        """Forget ``tx_hash`` if it is held."""
        with self._lock:
            self._hashes.pop(tx_hash, None)

    def __contains__(self, tx_hash: object) -> bool:
        with self._lock:
            if not isinstance(tx_hash, bytes) or tx_hash not in self._hashes:
                return False
            self._hashes.move_to_end(tx_hash)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._hashes)


def private_key_to_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """``key`` as a PKCS#8 PEM file.

    With a passphrase, the file is encrypted with the strongest scheme ``cryptography``
    offers for PKCS#8 (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC). The library fixes the
    PBKDF2 iteration count low (2,048), so only a long passphrase protects a file that
    leaks. Raises InvalidSignature if the passphrase is empty, since that would
    encrypt in name only.
    """
    encryption: serialization.KeySerializationEncryption
    if passphrase is None:
        encryption = serialization.NoEncryption()
    elif not passphrase:
        raise InvalidSignature("an empty passphrase cannot encrypt a key file; "
                               "pass None for an unencrypted file")
    else:
        encryption = serialization.BestAvailableEncryption(passphrase)
    return Ed25519PrivateKey.from_private_bytes(key.seed).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def private_key_from_pem(data: bytes, passphrase: bytes | None = None) -> PrivateKey:
    """The Ed25519 key of a PEM key file written by :func:`private_key_to_pem`.

    Raises InvalidSignature saying what is wrong: an encrypted file without a
    passphrase, a passphrase for a file that is not encrypted, a wrong passphrase, a
    key of another algorithm, or data that is not a PEM private key.
    """
    encrypted = _ENCRYPTED_PEM in data
    if encrypted and passphrase is None:
        raise InvalidSignature("the key file is encrypted: a passphrase is needed")
    if not encrypted and passphrase is not None and b"-----BEGIN PRIVATE KEY-----" in data:
        raise InvalidSignature("the key file is not encrypted, but a passphrase was given")
    try:
        loaded = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise InvalidSignature("wrong passphrase for the encrypted key file "
                                   "(or the file is damaged)") from None
        raise InvalidSignature("not a PKCS#8 PEM private key file") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise InvalidSignature(f"the key file holds a key of type {type(loaded).__name__}, "
                               "not Ed25519")
    return PrivateKey(loaded.private_bytes_raw())
