"""The end of an epoch (§6 "Epochs"): impact, rewards, unbondings and jails, next set."""

from __future__ import annotations

from dataclasses import replace

from chain.ledger import Ledger
from chain.params import ChainConfig
from chain.poi import (
    ATTESTATION_EXPIRED,
    ATTESTATION_PENDING,
    decayed_impact,
    split_rewards,
)
from chain.types import Account
from chain.validatorsets import next_validator_set, validator_set_at


def end_epoch(ledger: Ledger, height: int, epoch: int, config: ChainConfig) -> None:
    """Run the epoch end at ``height``, the last block of ``epoch``, in the protocol's order (§6.4)."""
    params = config.params
    # 1. Impact decays, then this epoch's finalized scores are added.
    scores = ledger.epoch_scores()
    this_epoch = dict(scores)
    impacted = {address for address, _ in ledger.impacts()} | set(this_epoch)
    for address in sorted(impacted):
        value = decayed_impact(ledger.impact(address), params.lambda_) + this_epoch.get(address, 0)
        ledger.set_impact(address, value)
    # 2. Rewards in proportion to this epoch's scores; what floors leave is burned.
    rewards = split_rewards([score for _, score in scores], params.epoch_issuance)
    issued_now = 0
    for (address, _), reward in zip(scores, rewards, strict=True):
        ledger.set_epoch_score(address, 0)
        if reward:
            acct = ledger.account(address)
            ledger.set_account(address, Account(acct.balance + reward, acct.nonce))
            issued_now += reward
    if issued_now:
        issued, slashed = ledger.supply()
        ledger.set_supply(issued + issued_now, slashed)
    # 3. Unbondings that are due are paid; jails that have ended are lifted; attestations
    #    left undecided expire: those under this epoch's prefix of the expiry index, whose
    #    keys are cleared.
    for operator, amount in ledger.unbondings(epoch):
        acct = ledger.account(operator)
        ledger.set_account(operator, Account(acct.balance + amount, acct.nonce))
    ledger.clear_unbondings(epoch)
    validators = ledger.validators()
    for i, v in enumerate(validators):
        if v.jailed_until_epoch and v.jailed_until_epoch <= epoch:
            validators[i] = replace(v, jailed_until_epoch=0)
            ledger.set_validator(validators[i])
    for att_id in ledger.expiring(epoch):
        att = ledger.attestation(att_id)
        if att is not None and att.status == ATTESTATION_PENDING:
            ledger.set_attestation(att_id, replace(att, status=ATTESTATION_EXPIRED))
        ledger.remove_expiry(epoch, att_id)
    # 4. The next validator set, in effect from height + 2.
    chosen = next_validator_set(ledger, validators, params)
    if not chosen:
        # A set with no power could never sign another block: keep the one in effect.
        chosen = validator_set_at(ledger, height + 1, config)
    ledger.set_validator_set(height + 2, chosen)
