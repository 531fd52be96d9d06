"""Signatures, sign bytes, addresses, the verified-tx cache and key files (chain.crypto)."""

from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.bindings import crypto_sign_BYTES, crypto_sign_PUBLICKEYBYTES, crypto_sign_SEEDBYTES

from chain.crypto import (
    DOMAIN_PROPOSAL,
    DOMAIN_TX,
    DOMAIN_VOTE,
    INLINE_BATCH,
    PrivateKey,
    VerifiedCache,
    address_of,
    private_key_from_pem,
    private_key_to_pem,
    sign_bytes,
    verify,
    verify_many,
    verify_many_in_background,
)
from chain.errors import InvalidSignature
from chain.sizes import PUBLIC_KEY_LEN, SEED_LEN, SIGNATURE_LEN

# RFC 8032 §7.1, TEST 1 and TEST 2.
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     ("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e"
      "39701cf9b46bd25bf5f0595bbe24655141438e7a100b")),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     ("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f"
      "3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00")),
]


def key(n: int) -> PrivateKey:
    return PrivateKey.from_seed(bytes([n]) * 32)


# ---------------------------------------------------------------------------------------
# Keys and signatures


@pytest.mark.parametrize(("seed", "public_key", "message", "signature"), RFC8032)
def test_rfc8032_vectors(seed: str, public_key: str, message: str, signature: str) -> None:
    k = PrivateKey.from_seed(bytes.fromhex(seed))
    assert k.seed == bytes.fromhex(seed)
    assert k.public_key == bytes.fromhex(public_key)
    assert k.sign(bytes.fromhex(message)) == bytes.fromhex(signature)
    assert verify(k.public_key, bytes.fromhex(message), bytes.fromhex(signature))


def test_generate_gives_distinct_working_keys() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a.seed != b.seed
    assert len(a.public_key) == 32
    sig = a.sign(b"hello")
    assert len(sig) == 64
    assert verify(a.public_key, b"hello", sig)
    assert not verify(b.public_key, b"hello", sig)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), bytearray(32), "x" * 32])
def test_from_seed_refuses_anything_but_32_bytes(seed: object) -> None:
    with pytest.raises(InvalidSignature, match="32 bytes"):
        PrivateKey.from_seed(seed)  # type: ignore[arg-type]


def test_repr_does_not_leak_the_seed() -> None:
    k = key(7)
    text = repr(k)
    assert k.seed.hex() not in text
    assert k.public_key.hex() in text
    assert str(k) == text


def test_the_protocol_sizes_are_libsodiums() -> None:
    libsodium = (crypto_sign_PUBLICKEYBYTES, crypto_sign_BYTES, crypto_sign_SEEDBYTES)
    assert libsodium == (PUBLIC_KEY_LEN, SIGNATURE_LEN, SEED_LEN)


def test_private_key_has_slots() -> None:
    with pytest.raises(AttributeError):
        key(1).extra = 1  # type: ignore[attr-defined]


def test_tampering_fails() -> None:
    k = key(3)
    message = b"transfer 10 SEED"
    sig = k.sign(message)
    assert verify(k.public_key, message, sig)
    assert not verify(k.public_key, message + b"0", sig)
    assert not verify(k.public_key, b"T" + message[1:], sig)
    assert not verify(k.public_key, message, bytes([sig[0] ^ 1]) + sig[1:])
    assert not verify(k.public_key, message, sig[:63] + bytes([sig[63] ^ 0x80]))
    assert not verify(bytes([k.public_key[0] ^ 1]) + k.public_key[1:], message, sig)
    assert not verify(key(4).public_key, message, sig)


@pytest.mark.parametrize(("public_key", "signature"), [
    (bytes(31), bytes(64)), (bytes(33), bytes(64)), (bytes(32), bytes(63)), (bytes(32), b""),
    (bytes(32), bytes(64)), (b"\xff" * 32, bytes(64)),
])
def test_verify_never_raises_on_malformed_input(public_key: bytes, signature: bytes) -> None:
    assert verify(public_key, b"m", signature) is False


def test_verify_refuses_non_bytes_arguments_quietly() -> None:
    k = key(5)
    sig = k.sign(b"m")
    assert verify(bytearray(k.public_key), b"m", sig) is False  # type: ignore[arg-type]
    assert verify(None, b"m", sig) is False  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Sign bytes and domain separation (§2)


def test_sign_bytes_layout() -> None:
    assert sign_bytes(DOMAIN_TX, "bizra-devnet-1", b"\x83\x01\x02\x03") == (
        b"bizra/tx/v1\x00bizra-devnet-1\x00\x83\x01\x02\x03")
    assert DOMAIN_TX == b"bizra/tx/v1"
    assert DOMAIN_PROPOSAL == b"bizra/proposal/v1"
    assert DOMAIN_VOTE == b"bizra/vote/v1"


def test_a_signature_is_valid_for_one_kind_and_one_chain_only() -> None:
    k = key(9)
    body = b"\x84\x01\x02\x03\x04"
    sig = k.sign(sign_bytes(DOMAIN_TX, "bizra-testnet-001", body))
    assert verify(k.public_key, sign_bytes(DOMAIN_TX, "bizra-testnet-001", body), sig)
    assert not verify(k.public_key, sign_bytes(DOMAIN_VOTE, "bizra-testnet-001", body), sig)
    assert not verify(k.public_key, sign_bytes(DOMAIN_PROPOSAL, "bizra-testnet-001", body), sig)
    assert not verify(k.public_key, sign_bytes(DOMAIN_TX, "bizra-devnet-1", body), sig)
    assert not verify(k.public_key, sign_bytes(DOMAIN_TX, "bizra-testnet-001", body + b"\x00"),
                      sig)


# ---------------------------------------------------------------------------------------
# Batches


def _batch(size: int) -> tuple[list[tuple[bytes, bytes, bytes]], list[bool]]:
    """``size`` triples, every third one broken in a different way."""
    items: list[tuple[bytes, bytes, bytes]] = []
    expected: list[bool] = []
    for i in range(size):
        k = key(i % 16)
        message = i.to_bytes(4, "big") * (1 + i % 5)
        sig = k.sign(message)
        broken = i % 3 == 1
        if broken:
            match i % 4:
                case 0:
                    message += b"!"
                case 1:
                    sig = bytes([sig[0] ^ 4]) + sig[1:]
                case 2:
                    sig = sig[:-1]
                case _:
                    k = key(i % 16 + 16)
        items.append((k.public_key, message, sig))
        expected.append(not broken)
    return items, expected


@pytest.mark.parametrize("size", [0, 1, INLINE_BATCH - 1, INLINE_BATCH, 37, 200])
def test_verify_many_agrees_with_verify(size: int) -> None:
    items, expected = _batch(size)
    assert [verify(*item) for item in items] == expected
    assert verify_many(items) == expected


@pytest.mark.parametrize("size", [0, 5, 100])
def test_verify_many_in_background(size: int) -> None:
    items, expected = _batch(size)
    assert verify_many_in_background(items).result(timeout=30) == expected


def test_verify_many_from_several_threads_at_once() -> None:
    items, expected = _batch(120)
    results: list[list[bool]] = []
    lock = threading.Lock()

    def run() -> None:
        got = verify_many(items)
        with lock:
            results.append(got)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [expected] * 4


# ---------------------------------------------------------------------------------------
# Addresses


def test_address_is_the_first_20_bytes_of_sha256() -> None:
    k = key(11)
    assert address_of(k.public_key) == hashlib.sha256(k.public_key).digest()[:20]
    assert len(address_of(k.public_key)) == 20


@pytest.mark.parametrize("public_key", [b"", bytes(20), bytes(33)])
def test_address_of_refuses_wrong_lengths(public_key: bytes) -> None:
    with pytest.raises(InvalidSignature, match="32 bytes"):
        address_of(public_key)


# ---------------------------------------------------------------------------------------
# VerifiedCache


def test_cache_basics() -> None:
    cache = VerifiedCache()
    h = bytes(32)
    assert h not in cache
    assert len(cache) == 0
    cache.add(h)
    cache.add(h)
    assert h in cache
    assert len(cache) == 1
    cache.discard(h)
    cache.discard(h)
    assert h not in cache
    assert len(cache) == 0
    assert "not bytes" not in cache


def test_cache_forgets_the_least_recently_used() -> None:
    cache = VerifiedCache(capacity=3)
    a, b, c, d, e = (bytes([n]) * 32 for n in range(5))
    for h in (a, b, c):
        cache.add(h)
    assert a in cache  # a is now the most recently used; b the least
    cache.add(d)
    assert len(cache) == 3
    assert b not in cache
    assert all(h in cache for h in (a, c, d))
    cache.add(c)  # re-adding refreshes too
    cache.add(e)
    assert a not in cache
    assert {h for h in (a, b, c, d, e) if h in cache} == {c, d, e}


def test_cache_default_capacity_and_refusal_of_zero() -> None:
    cache = VerifiedCache()
    for n in range(200_001):
        cache.add(n.to_bytes(32, "big"))
    assert len(cache) == 200_000
    assert bytes(32) not in cache
    with pytest.raises(ValueError, match="at least 1"):
        VerifiedCache(capacity=0)


def test_cache_bulk_methods_act_as_one_call_per_hash() -> None:
    """``unknown`` finds what ``in`` finds and refreshes what it finds; ``add_all`` adds
    in order and evicts as ``add`` does, across the lock's chunks."""
    hashes = [n.to_bytes(32, "big") for n in range(3_000)]  # more than one chunk
    cache = VerifiedCache(capacity=2_500)
    cache.add_all(hashes[:2_000])
    assert cache.unknown(hashes) == list(range(2_000, 3_000))
    assert cache.unknown([]) == []
    cache.add_all(hashes[2_000:])  # 500 of the first evicted, in the order they came
    assert len(cache) == 2_500
    assert cache.unknown(hashes) == list(range(500))

    small = VerifiedCache(capacity=3)
    a, b, c, d = (bytes([n]) * 32 for n in range(4))
    small.add_all([a, b, c])
    assert small.unknown([b, a, d]) == [2]  # finding b then a refreshes them: c is the oldest
    small.add_all([d])
    assert small.unknown([a, b, c, d]) == [2]


def test_cache_from_threads_stays_bounded() -> None:
    cache = VerifiedCache(capacity=500)

    def work(base: int) -> None:
        for n in range(2_000):
            h = (base + n).to_bytes(32, "big")
            cache.add(h)
            _ = h in cache
            if n % 7 == 0:
                cache.discard(h)

    threads = [threading.Thread(target=work, args=(i * 10_000,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(cache) == 500


# ---------------------------------------------------------------------------------------
# Key files


def test_pem_round_trip_without_passphrase() -> None:
    k = key(21)
    pem = private_key_to_pem(k)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert private_key_from_pem(pem).seed == k.seed
    # The file is standard PKCS#8: other tools read the same key.
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert loaded.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw) == k.public_key


def test_pem_round_trip_with_passphrase() -> None:
    k = key(22)
    pem = private_key_to_pem(k, b"correct horse battery staple")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert k.seed.hex().encode() not in pem
    assert private_key_from_pem(pem, b"correct horse battery staple").seed == k.seed


def test_pem_wrong_passphrase() -> None:
    pem = private_key_to_pem(key(23), b"right")
    with pytest.raises(InvalidSignature, match="wrong passphrase"):
        private_key_from_pem(pem, b"wrong")


def test_pem_encrypted_without_passphrase() -> None:
    pem = private_key_to_pem(key(24), b"secret")
    with pytest.raises(InvalidSignature, match="encrypted: a passphrase is needed"):
        private_key_from_pem(pem)


def test_pem_passphrase_for_an_unencrypted_file() -> None:
    with pytest.raises(InvalidSignature, match="not encrypted, but a passphrase was given"):
        private_key_from_pem(private_key_to_pem(key(25)), b"secret")


def test_pem_empty_passphrase_refused() -> None:
    with pytest.raises(InvalidSignature, match="empty passphrase"):
        private_key_to_pem(key(26), b"")


def test_pem_of_another_algorithm() -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(InvalidSignature, match="not Ed25519"):
        private_key_from_pem(other)


@pytest.mark.parametrize("data", [
    b"",
    b"garbage",
    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    private_key_to_pem(PrivateKey.from_seed(bytes(32)))[:60],
])
def test_pem_garbage(data: bytes) -> None:
    with pytest.raises(InvalidSignature, match="not a PKCS#8 PEM private key"):
        private_key_from_pem(data)
