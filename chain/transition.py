"""The state transition: ``apply_block(state, block) -> outcome`` (§3, §4, §6).

Pure: it reads the committed state through a :class:`~chain.ledger.StateReader`, writes
nothing, and returns the block's key/value changes and its tx results. The caller
commits the changes (memory or LevelDB) and feeds them to the state root.

Order inside a block (as CometBFT's BeginBlock / DeliverTx / EndBlock):
1. header checks against the state (height, time, hashes, last commit, proposer);
2. evidence: each duplicate vote slashes, lowers reputation and jails;
3. txs in order: fee and nonce are charged first, then the kind's rule (a tx failing
   its rule stays in the block with a non-zero result code);
4. at the last block of an epoch, the epoch end of §6;
5. the block's fees to its proposer's operator account.

Signatures of the txs are checked on all cores while the block executes; a block
with any bad tx signature is invalid and its outcome discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import IntEnum

from chain import statekeys as keys
from chain.codec import MAX_UINT64, dumps
from chain.commits import (
    check_body,
    median_time,
    results_hash,
    validators_hash,
    verify_commit,
    vote_sign_bytes,
)
from chain.crypto import (
    DOMAIN_TX,
    BatchVerifier,
    PrivateKey,
    SignedItem,
    VerifiedCache,
    address_of,
    verify,
    verify_many_in_background,
)
from chain.epoch import end_epoch
from chain.errors import DecodeError, ForgedTx, InvalidBlock, InvalidEvidence, InvalidTx
from chain.fastcodec import read_tx
from chain.ledger import Ledger, StateReader
from chain.params import PPM, ChainConfig, Params
from chain.poi import (
    ATTESTATION_FINALIZED,
    ATTESTATION_PENDING,
    INITIAL_REPUTATION,
    attestation_score,
    endorsement_outcome,
    expiry_epoch,
)
from chain.sizes import BLOCK_EVIDENCE_LIMIT, PUBLIC_KEY_LEN, SIGNATURE_LEN
from chain.types import (
    TX_SENDER,
    Account,
    Attestation,
    Block,
    Bond,
    ChainMeta,
    DuplicateVoteEvidence,
    PoiAttest,
    PoiEndorse,
    SetMember,
    Transfer,
    Tx,
    TxBody,
    TxResult,
    Unbond,
    Validator,
    ValidatorRegister,
    decode,
    encode,
    sha256,
    tx_hash,
    unsigned_tx_encoding,
)
from chain.validatorsets import validator_set_at

BLOCK_VERSION = 1
Decoded = Callable[[bytes], "Tx | None"]
"""Where txs decoded already are found by hash: a tx's decoding, or None."""
PrepareRoot = Callable[[bytes, dict[bytes, bytes | None]], None]
"""Given a state's root and a block's changes to it, works out the root after them
ahead of their commit, which then adopts the work (``prepare_root`` of
:class:`~chain.state.MemoryState` and :class:`~storage.statestore.StateStore`)."""
STOP_EVERY = 256
"""How many txs :meth:`BlockBuilder.offer` executes between two questions to its ``stop``."""
SLASH_REPUTATION = 50_000


class Code(IntEnum):
    """Result codes of txs included in a block (0 = success)."""

    OK = 0
    INSUFFICIENT_FUNDS = 1
    ZERO_AMOUNT = 2
    ALREADY_REGISTERED = 3
    CONSENSUS_KEY_IN_USE = 4
    MONIKER_TOO_LONG = 5
    """Never given: a moniker above ``MAX_MONIKER_BYTES`` does not decode (§3.2), so a
    tx carrying one never enters a block. The number is reserved."""
    NOT_A_VALIDATOR = 6
    INSUFFICIENT_BOND = 7
    WRONG_EPOCH = 8
    SCORE_OUT_OF_RANGE = 9
    DUPLICATE_ATTESTATION = 10
    UNKNOWN_ATTESTATION = 11
    ATTESTATION_DECIDED = 12
    NOT_ACTIVE_VALIDATOR = 13
    ALREADY_ENDORSED = 14


@dataclass(slots=True)
class BlockOutcome:
    """The effect of a block: state changes, per-tx results and what they hash to."""

    changes: dict[bytes, bytes | None]
    results: list[TxResult]
    results_hash: bytes
    tx_hashes: tuple[bytes, ...]
    epoch_ended: bool = False
    slashed: list[bytes] = field(default_factory=list)


# ---------------------------------------------------------------------------------------
# Checks a tx passes or never enters a block (§3): used by the mempool too.


def tx_sign_prefix(chain_id: str) -> bytes:
    """``domain || 0x00 || chain_id || 0x00``, to which a tx's unsigned encoding is added."""
    return DOMAIN_TX + b"\x00" + chain_id.encode() + b"\x00"


def fee_due(params: Params, size: int) -> int:
    """The least fee of a tx whose encoding is ``size`` bytes (§3.4):
    ``min_fee + fee_per_byte × size``."""
    return params.min_fee + params.fee_per_byte * size


def decode_tx(encoded: bytes, params: Params) -> Tx:
    """Decode a tx and check what needs no state: its size and its fee, which must be at
    least :func:`fee_due` of its encoding's length. The one place both are checked, for
    the mempool and for block execution alike. Raises InvalidTx."""
    if len(encoded) > params.max_tx_bytes:
        raise InvalidTx(f"tx is {len(encoded)} bytes, more than max_tx_bytes {params.max_tx_bytes}")
    tx = read_tx(encoded) if type(encoded) is bytes else None
    if tx is None:
        try:
            tx = decode(Tx, encoded)
        except DecodeError as exc:
            raise InvalidTx(str(exc)) from None
    due = fee_due(params, len(encoded))
    if tx.fee < due:
        raise InvalidTx(f"fee {tx.fee} is below {due}: min_fee {params.min_fee} + fee_per_byte "
                        f"{params.fee_per_byte} × {len(encoded)} bytes")
    return tx


def least_fee(params: Params, nonce: int, body: TxBody) -> int:
    """The least fee a tx of ``body`` at ``nonce`` can name and pass :func:`decode_tx`
    (its sender's key and signature do not change its length).

    The fee is part of the encoding whose length it pays for, and the encoding grows
    with it (an integer's head is longer from 24, 256, 65,536 and 2**32 on), so the fee is
    raised to what its own encoding is due until it pays for itself: each step stays at
    or below every fee that passes, so the first that passes is the least. Raises
    InvalidTx if no fee of 64 bits pays.
    """
    fee = params.min_fee
    while True:
        if fee > MAX_UINT64:
            raise InvalidTx(f"no fee pays for this tx: it is due {fee}, above 2**64 - 1")
        due = fee_due(params, len(encode(Tx(bytes(PUBLIC_KEY_LEN), nonce, fee, body,
                                            bytes(SIGNATURE_LEN)))))
        if fee >= due:
            return fee
        fee = due


def sign_tx(chain_id: str, key: PrivateKey, nonce: int, body: TxBody, fee: int) -> bytes:
    """The encoding of a tx of ``body`` from ``key``'s account, signed (§3)."""
    unsigned = Tx(key.public_key, nonce, fee, body, bytes(SIGNATURE_LEN))
    signature = key.sign(tx_sign_prefix(chain_id) + dumps(unsigned.unsigned_cbor()))
    return encode(replace(unsigned, signature=signature))


def tx_signature(prefix: bytes, encoded: bytes) -> SignedItem:
    """What checking the signature of the tx encoded as ``encoded`` takes, as
    :func:`~chain.crypto.verify_many` takes it: the sender's key, the sign bytes (after
    ``prefix``, :func:`tx_sign_prefix` of the chain) and the signature. They are sliced
    from the encoding, where every tx that decodes has them, so the check can start
    before the tx is decoded; for bytes that do not decode it is meaningless."""
    return (encoded[TX_SENDER], prefix + unsigned_tx_encoding(encoded), encoded[-SIGNATURE_LEN:])


def forged_tx() -> ForgedTx:
    """The error of a tx whose signature does not verify."""
    return ForgedTx("invalid signature")


def verify_tx_signature(chain_id: str, encoded: bytes) -> None:
    """Raises ForgedTx unless the tx encoded as ``encoded`` (one that decodes) is signed
    by its sender for chain ``chain_id``."""
    if not verify(*tx_signature(tx_sign_prefix(chain_id), encoded)):
        raise forged_tx()


def check_tx_against_state(ledger: Ledger, sender: bytes, tx: Tx) -> Account:
    """Nonce and fee-paying balance: what makes a signed tx from address ``sender``
    includable now. Returns the sender's account; raises InvalidTx."""
    account = ledger.account(sender)
    if tx.nonce != account.nonce:
        raise InvalidTx(f"nonce {tx.nonce} does not match the account's next nonce {account.nonce}")
    if account.balance < tx.fee:
        raise InvalidTx(f"balance {account.balance} cannot pay the fee {tx.fee}")
    return account


# ---------------------------------------------------------------------------------------
# The block.


def apply_block(state: StateReader, app_hash: bytes, block: Block, config: ChainConfig,
                verified: VerifiedCache | None = None,
                verifier: BatchVerifier = verify_many_in_background,
                decoded: Decoded | None = None, prepare_root: PrepareRoot | None = None) -> BlockOutcome:
    """Apply ``block`` to ``state`` (whose root is ``app_hash``) and return its outcome.

    ``verified`` holds hashes of txs whose signatures were already checked (the
    mempool's cache); the others are handed to ``verifier`` (by default threads on every
    core) while the block executes. ``decoded`` finds txs decoded already (the
    mempool's) by hash, so that they are not decoded again. ``prepare_root`` is given the
    block's changes once it has executed while signatures are still being checked, so
    that the state root after them is worked out meanwhile (not otherwise: without a
    wait to fill, it is left to the commit). Raises InvalidBlock (state untouched) if
    the block breaks any rule.
    """
    params = config.params
    ledger = Ledger(state)
    header = block.header
    height = header.height
    tx_hashes = block.tx_hashes()
    _check_header(ledger, app_hash, block, config)
    members = validator_set_at(ledger, height, config)

    prefix = tx_sign_prefix(config.chain_id)
    unverified = list(range(len(tx_hashes))) if verified is None else verified.unknown(tx_hashes)
    # Sliced from the raw bytes, so checking starts before decoding; a tx that does not
    # decode makes the block invalid anyway, and for one that does the slices are exact.
    pending = verifier([tx_signature(prefix, block.txs[i]) for i in unverified])
    try:
        epoch = params.epoch_of(height, config.initial_height)
        slashed = [_apply_evidence(ledger, ev, height, epoch, config) for ev in block.evidence]
        ctx = _TxContext(ledger, config, epoch, members, decoded)
        results = [ctx.execute(raw, i, tx_hashes[i]) for i, raw in enumerate(block.txs)]
        outcome = _finish(ctx, block, results, tx_hashes, slashed)
        if prepare_root is not None and unverified and not pending.done():
            prepare_root(app_hash, outcome.changes)
    finally:
        checks = pending.result()
    if not all(checks):
        raise InvalidBlock(f"block {height}: tx {unverified[checks.index(False)]} has an invalid signature")
    return outcome


def _finish(ctx: _TxContext, block: Block, results: list[TxResult], tx_hashes: tuple[bytes, ...],
            slashed: list[bytes]) -> BlockOutcome:
    """What follows a block's txs: the epoch's end at its last block, the fees to the
    proposer's operator, the chain's record of the block; the block's outcome."""
    ledger, config = ctx.ledger, ctx.config
    header = block.header
    height = header.height
    epoch_ended = config.params.is_epoch_end(height, config.initial_height)
    if epoch_ended:
        end_epoch(ledger, height, ctx.epoch, config)
    if ctx.fees:
        operator = ledger.operator_of(header.proposer_address)
        if operator is None:
            raise InvalidBlock("proposer has no operator account")
        acct = ledger.account(operator)
        ledger.set_account(operator, Account(acct.balance + ctx.fees, acct.nonce))
    res_hash = results_hash(results)
    ledger.set_meta(ChainMeta(height, header.time_ns, block.block_id(), res_hash))
    return BlockOutcome(ledger.diff(), results, res_hash, tx_hashes, epoch_ended, slashed)


Seal = Callable[[list[bytes], list[bytes], list[DuplicateVoteEvidence]], Block]
"""Makes the next block of the txs chosen (their encodings, then their hashes) and the
evidence chosen: :func:`chain.blocks.make_block` with the proposer's header fields."""


class BlockBuilder:
    """A proposer's next block on top of ``state``, its txs executed as they are offered.

    The evidence is chosen (as :func:`includable_evidence` chooses it) and applied first,
    as a block applies it; then each :meth:`offer` executes candidates in their order and
    keeps those the block can carry (as :func:`includable_txs` chooses them), at most
    ``max_txs`` txs and ``max_bytes`` bytes (never more than the params allow); a tx left
    out changes nothing. Offers may come in as many parts as the txs arrive in: the
    choice is the one a single offer of them all makes. :meth:`seal` then makes the
    block, and its outcome is the one :func:`apply_block` gives for it, so that the
    proposer commits it without executing it again. Signatures are not checked: the
    candidates are txs the mempool admitted. Not thread-safe: one caller at a time.
    """

    __slots__ = ("_ctx", "_results", "_slashed", "_state", "evidence", "hashes", "max_bytes", "max_txs",
                 "offered_evidence", "size", "txs")

    def __init__(self, state: StateReader, config: ChainConfig, evidence: Iterable[DuplicateVoteEvidence], *,
                 max_txs: int, max_bytes: int, decoded: Decoded | None = None) -> None:
        ledger = Ledger(state)
        height = ledger.meta().height + 1
        epoch = config.params.epoch_of(height, config.initial_height)
        self._state = state
        self._ctx = _TxContext(ledger, config, epoch, validator_set_at(ledger, height, config), decoded)
        self.offered_evidence = tuple(evidence)
        """The evidence it was given (the chosen evidence is :attr:`evidence`)."""
        self.evidence, self._slashed = _choose_evidence(ledger, self.offered_evidence, height, epoch, config)
        self.max_txs = min(max_txs, config.params.max_block_txs)
        self.max_bytes = min(max_bytes, config.params.max_block_bytes)
        self.txs: list[bytes] = []
        self.hashes: list[bytes] = []
        self._results: list[TxResult] = []
        self.size = 0
        """The bytes of the txs chosen."""

    @property
    def full(self) -> bool:
        """Whether the block holds ``max_txs`` txs (an offer adds none)."""
        return len(self.txs) >= self.max_txs

    def offer(self, candidates: Iterable[bytes], stop: Callable[[], bool] | None = None) -> None:
        """Execute ``candidates`` in their order on top of the txs chosen so far, keeping
        those the block can carry. ``stop``, asked before every ``STOP_EVERY`` txs
        executed, ends the offer there when it says so (a proposer out of time): the txs
        chosen until then are still a valid block's."""
        ctx, txs, hashes, results = self._ctx, self.txs, self.hashes, self._results
        max_txs, max_bytes = self.max_txs, self.max_bytes
        for raw in candidates:
            if len(txs) >= max_txs:
                break
            if self.size + len(raw) > max_bytes:
                continue
            if stop is not None and len(txs) % STOP_EVERY == 0 and txs and stop():
                break
            h = tx_hash(raw)
            try:
                result = ctx.execute(raw, len(txs), h)  # raises before it changes anything
            except InvalidBlock:
                continue
            txs.append(raw)
            hashes.append(h)
            results.append(result)
            self.size += len(raw)

    def seal(self, app_hash: bytes, seal: Seal) -> tuple[Block, BlockOutcome]:
        """The block ``seal`` makes of what was chosen, and its outcome; ``app_hash``:
        the root of ``state``. Once only: the builder is spent after. Raises InvalidBlock
        if the sealed block breaks a rule of its header."""
        block = seal(self.txs, self.hashes, self.evidence)
        # The seal hashed these very txs into the header: their hash is not checked again.
        _check_header(Ledger(self._state), app_hash, block, self._ctx.config, txs=False)
        return block, _finish(self._ctx, block, self._results, tuple(self.hashes), self._slashed)


def build_block(state: StateReader, app_hash: bytes, config: ChainConfig, candidates: Iterable[bytes],
                evidence: Iterable[DuplicateVoteEvidence], seal: Seal, *, max_txs: int, max_bytes: int,
                stop: Callable[[], bool] | None = None, decoded: Decoded | None = None
                ) -> tuple[Block, BlockOutcome]:
    """A proposer's next block on top of ``state`` (whose root is ``app_hash``) of
    ``candidates`` and ``evidence``, and its outcome, each tx executed once: a
    :class:`BlockBuilder` offered them all at once, then sealed."""
    builder = BlockBuilder(state, config, evidence, max_txs=max_txs, max_bytes=max_bytes, decoded=decoded)
    builder.offer(candidates, stop)
    return builder.seal(app_hash, seal)


def includable_txs(state: StateReader, config: ChainConfig, candidates: Iterable[bytes], *,
                   max_txs: int, max_bytes: int, stop: Callable[[], bool] | None = None,
                   decoded: Decoded | None = None) -> list[bytes]:
    """The ``candidates``, in their order, that the next block on top of ``state`` can
    carry: each decodes, pays its fee and has its sender's next nonce once the ones
    before it have executed; the others are left out. At most ``max_txs`` txs and
    ``max_bytes`` bytes (and never more than the params allow). Signatures are not
    checked here (the mempool admitted only signed txs). ``stop``: as for
    :meth:`BlockBuilder.offer`. ``decoded``: as for :func:`apply_block`.
    """
    builder = BlockBuilder(state, config, (), max_txs=max_txs, max_bytes=max_bytes, decoded=decoded)
    builder.offer(candidates, stop)
    return builder.txs


def includable_evidence(state: StateReader, config: ChainConfig,
                        candidates: Iterable[DuplicateVoteEvidence]) -> list[DuplicateVoteEvidence]:
    """The ``candidates``, in their order, that the next block on top of ``state`` can
    carry: each proves a double sign of an earlier height, no older than
    ``evidence_max_age``, that no earlier block or candidate punished. The others (of
    this very height, expired, already punished, or not proving anything) are left out,
    and so is any beyond the first ``BLOCK_EVIDENCE_LIMIT`` chosen.
    """
    ledger = Ledger(state)
    height = ledger.meta().height + 1
    epoch = config.params.epoch_of(height, config.initial_height)
    return _choose_evidence(ledger, candidates, height, epoch, config)[0]


def _choose_evidence(ledger: Ledger, candidates: Iterable[DuplicateVoteEvidence], height: int, epoch: int,
                     config: ChainConfig) -> tuple[list[DuplicateVoteEvidence], list[bytes]]:
    """:func:`includable_evidence`, applied to ``ledger``: the evidence chosen and the
    operators it slashed."""
    chosen: list[DuplicateVoteEvidence] = []
    slashed: list[bytes] = []
    for ev in candidates:
        if len(chosen) == BLOCK_EVIDENCE_LIMIT:
            break
        try:
            # raises before it changes anything
            slashed.append(_apply_evidence(ledger, ev, height, epoch, config))
        except InvalidBlock:
            continue
        chosen.append(ev)
    return chosen, slashed


def _check_header(ledger: Ledger, app_hash: bytes, block: Block, config: ChainConfig, *,
                  txs: bool = True) -> None:
    """InvalidBlock unless ``block``'s header follows the state of ``ledger`` (whose root
    is ``app_hash``) and commits to its body; ``txs``: as for
    :func:`~chain.commits.check_body`."""
    h = block.header
    meta = ledger.meta()
    params = config.params

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise InvalidBlock(f"block {h.height}: {what}")

    expect(h.version == BLOCK_VERSION, f"version {h.version}, expected {BLOCK_VERSION}")
    expect(h.chain_id == config.chain_id, f"chain id {h.chain_id!r}, expected {config.chain_id!r}")
    expect(h.height == meta.height + 1, f"height follows {meta.height}")
    expect(h.last_block_id == meta.block_id, "last_block_id is not the previous block's id")
    expect(h.app_hash == app_hash, "app_hash is not the state root after the previous block")
    expect(h.last_results_hash == meta.results_hash, "last_results_hash does not match")
    expect(len(block.txs) <= params.max_block_txs, f"more than {params.max_block_txs} txs")
    expect(len(block.evidence) <= BLOCK_EVIDENCE_LIMIT, f"more than {BLOCK_EVIDENCE_LIMIT} evidence")
    expect(sum(len(t) for t in block.txs) <= params.max_block_bytes,
           f"txs exceed max_block_bytes {params.max_block_bytes}")
    check_body(block, txs=txs)
    current = validator_set_at(ledger, h.height, config)
    expect(h.validators_hash == validators_hash(current), "validators_hash does not match")
    expect(h.next_validators_hash == validators_hash(validator_set_at(ledger, h.height + 1, config)),
           "next_validators_hash does not match")
    expect(any(address_of(m.pubkey) == h.proposer_address for m in current),
           "proposer is not in the validator set")
    if h.height == config.initial_height:
        expect(block.last_commit is None, "the first block has no last commit")
        expect(h.time_ns == meta.time_ns, "the first block's time is not the genesis time")
        return
    last_commit = block.last_commit
    if last_commit is None:
        raise InvalidBlock(f"block {h.height}: missing last commit")
    previous = validator_set_at(ledger, h.height - 1, config)
    verify_commit(config.chain_id, last_commit, previous, h.height - 1, meta.block_id)
    expect(h.time_ns == median_time(last_commit, previous),
           "time is not the weighted median of the last commit")
    expect(h.time_ns > meta.time_ns, "time does not increase")


def _apply_evidence(ledger: Ledger, ev: DuplicateVoteEvidence, height: int, epoch: int,
                    config: ChainConfig) -> bytes:
    """Check duplicate-vote evidence and slash its validator; returns the operator."""
    params = config.params
    a, b = ev.vote_a, ev.vote_b
    try:
        if not config.initial_height <= a.height < height:
            raise InvalidEvidence(f"evidence height {a.height} is not a past height")
        if height - a.height > params.evidence_max_age:
            raise InvalidEvidence(f"evidence from height {a.height} is older than "
                                  f"evidence_max_age {params.evidence_max_age}")
        members = validator_set_at(ledger, a.height, config)
        if a.validator_index >= len(members) or b.validator_index != a.validator_index:
            raise InvalidEvidence("evidence names no validator of its height's set")
        pubkey = members[a.validator_index].pubkey
        if address_of(pubkey) != a.validator_address:
            raise InvalidEvidence("evidence validator index and address disagree")
        for vote in (a, b):
            if not verify(pubkey, vote_sign_bytes(config.chain_id, vote), vote.signature):
                raise InvalidEvidence("evidence carries an invalid vote signature")
        mark = keys.slashed(a.validator_address, a.height, a.round, int(a.type))
        if ledger.was_slashed(mark):
            raise InvalidEvidence("this double sign was already punished")
        operator = ledger.operator_of(a.validator_address)
        validator = None if operator is None else ledger.validator(operator)
        if validator is None:
            raise InvalidEvidence("evidence names an unknown validator")
    except InvalidEvidence as exc:
        raise InvalidBlock(f"block {height}: {exc}") from None
    ledger.mark_slashed(mark, height)
    penalty = validator.bond * params.slash_fraction // PPM
    ledger.set_validator(replace(
        validator,
        bond=validator.bond - penalty,
        reputation=max(0, validator.reputation - SLASH_REPUTATION),
        jailed_until_epoch=max(validator.jailed_until_epoch, epoch + params.jail_epochs),
    ))
    issued, slashed = ledger.supply()
    ledger.set_supply(issued, slashed + penalty)
    return validator.operator


class _TxContext:
    """Executes a block's txs in order against one ledger."""

    __slots__ = ("config", "decoded", "epoch", "fees", "ledger", "members", "nonces", "power", "total_power")

    def __init__(self, ledger: Ledger, config: ChainConfig, epoch: int,
                 members: list[SetMember], decoded: Decoded | None = None) -> None:
        self.ledger = ledger
        self.decoded = decoded
        self.config = config
        self.epoch = epoch
        self.fees = 0
        self.members = members
        self.power = {address_of(m.pubkey): m.power for m in members}
        self.total_power = sum(self.power.values())

    def execute(self, raw: bytes, index: int, h: bytes | None = None) -> TxResult:
        """Execute ``raw``, the block's tx ``index`` (of hash ``h``, when known)."""
        ledger = self.ledger
        try:
            tx = None if h is None or self.decoded is None else self.decoded(h)
            if tx is None:
                tx = decode_tx(raw, self.config.params)
            sender = address_of(tx.sender)
            account = check_tx_against_state(ledger, sender, tx)
        except InvalidTx as exc:
            raise InvalidBlock(f"tx {index}: {exc}") from None
        account = Account(account.balance - tx.fee, account.nonce + 1)
        ledger.set_account(sender, account)
        self.fees += tx.fee
        body = tx.body
        if isinstance(body, Transfer):
            return self._transfer(sender, account, body)
        if isinstance(body, ValidatorRegister):
            return self._register(sender, body)
        if isinstance(body, Bond):
            return self._bond(sender, body)
        if isinstance(body, Unbond):
            return self._unbond(sender, body)
        if isinstance(body, PoiAttest):
            return self._attest(sender, body)
        return self._endorse(sender, body)

    def _transfer(self, sender: bytes, acct: Account, body: Transfer) -> TxResult:
        ledger = self.ledger
        if body.amount == 0:
            return _fail(Code.ZERO_AMOUNT, "transfer of zero")
        if acct.balance < body.amount:
            return _fail(Code.INSUFFICIENT_FUNDS,
                         f"balance {acct.balance} after fee is less than {body.amount}")
        ledger.set_account(sender, Account(acct.balance - body.amount, acct.nonce))
        to = ledger.account(body.to)
        ledger.set_account(body.to, Account(to.balance + body.amount, to.nonce))
        return _OK

    def _register(self, sender: bytes, body: ValidatorRegister) -> TxResult:
        ledger = self.ledger
        if ledger.validator(sender) is not None:
            return _fail(Code.ALREADY_REGISTERED, "this operator already has a validator")
        consensus_address = address_of(body.consensus_pubkey)
        if ledger.operator_of(consensus_address) is not None:
            return _fail(Code.CONSENSUS_KEY_IN_USE, "consensus key belongs to another validator")
        ledger.set_validator(Validator(sender, body.consensus_pubkey, body.moniker, 0,
                                       INITIAL_REPUTATION, 0))
        ledger.set_operator_of(consensus_address, sender)
        return _OK

    def _bond(self, sender: bytes, body: Bond) -> TxResult:
        ledger = self.ledger
        validator = ledger.validator(sender)
        if validator is None:
            return _fail(Code.NOT_A_VALIDATOR, "sender operates no validator")
        if body.amount == 0:
            return _fail(Code.ZERO_AMOUNT, "bond of zero")
        acct = ledger.account(sender)
        if acct.balance < body.amount:
            return _fail(Code.INSUFFICIENT_FUNDS,
                         f"balance {acct.balance} after fee is less than {body.amount}")
        ledger.set_account(sender, Account(acct.balance - body.amount, acct.nonce))
        ledger.set_validator(replace(validator, bond=validator.bond + body.amount))
        return _OK

    def _unbond(self, sender: bytes, body: Unbond) -> TxResult:
        ledger = self.ledger
        validator = ledger.validator(sender)
        if validator is None:
            return _fail(Code.NOT_A_VALIDATOR, "sender operates no validator")
        if body.amount == 0:
            return _fail(Code.ZERO_AMOUNT, "unbond of zero")
        if validator.bond < body.amount:
            return _fail(Code.INSUFFICIENT_BOND, f"bond {validator.bond} is less than {body.amount}")
        ledger.set_validator(replace(validator, bond=validator.bond - body.amount))
        release = self.epoch + self.config.params.unbonding_epochs
        ledger.add_unbonding(release, sender, body.amount)
        return _OK

    def _attest(self, sender: bytes, body: PoiAttest) -> TxResult:
        ledger = self.ledger
        params = self.config.params
        if body.epoch != self.epoch:
            return _fail(Code.WRONG_EPOCH, f"epoch {body.epoch} is not the current epoch {self.epoch}")
        if any(d > PPM for d in body.dims) or body.penalty > PPM:
            return _fail(Code.SCORE_OUT_OF_RANGE, f"dims and penalty must be within [0, {PPM}]")
        att_id = attestation_id(sender, body.epoch, body.evidence_root)
        if ledger.attestation(att_id) is not None:
            return _fail(Code.DUPLICATE_ATTESTATION, "this attestation exists already")
        score = attestation_score(body.dims, body.penalty, params.poi_weights, params.max_penalty)
        ledger.set_attestation(att_id, Attestation(sender, body.epoch, score,
                                                   ATTESTATION_PENDING, 0, 0))
        ledger.add_expiry(expiry_epoch(body.epoch, params.attestation_ttl_epochs), att_id)
        return TxResult(Code.OK, att_id)

    def _endorse(self, sender: bytes, body: PoiEndorse) -> TxResult:
        ledger = self.ledger
        validator = ledger.validator(sender)
        power = 0 if validator is None else self.power.get(address_of(validator.consensus_pubkey), 0)
        if validator is None or power == 0:
            return _fail(Code.NOT_ACTIVE_VALIDATOR, "sender operates no active validator")
        if body.validation_score > PPM:
            return _fail(Code.SCORE_OUT_OF_RANGE, f"validation_score must be within [0, {PPM}]")
        att = ledger.attestation(body.attestation_id)
        if att is None:
            return _fail(Code.UNKNOWN_ATTESTATION, "no such attestation")
        if att.status != ATTESTATION_PENDING:
            return _fail(Code.ATTESTATION_DECIDED, "attestation is no longer open")
        if ledger.endorsement(body.attestation_id, sender) is not None:
            return _fail(Code.ALREADY_ENDORSED, "this validator endorsed it already")
        ledger.set_endorsement(body.attestation_id, sender, body.validation_score)
        endorsing = att.endorsing_power + power
        weighted = att.weighted_scores + power * body.validation_score
        status = endorsement_outcome(endorsing, weighted, self.total_power,
                                     self.config.params.validation_threshold)
        ledger.set_attestation(body.attestation_id, Attestation(
            att.contributor, att.epoch, att.score, status, endorsing, weighted))
        if status == ATTESTATION_FINALIZED:
            ledger.set_epoch_score(att.contributor,
                                   ledger.epoch_score(att.contributor) + att.score)
        return _OK


def attestation_id(contributor: bytes, epoch: int, evidence_root: bytes) -> bytes:
    """SHA-256 of the encoding of ``[contributor_address, epoch, evidence_root]`` (§6)."""
    return sha256(dumps([contributor, epoch, evidence_root]))


_OK = TxResult(Code.OK)


def _fail(code: Code, log: str) -> TxResult:
    return TxResult(int(code), b"", log)


