"""What the fuzz tests share: their number of examples, their settings, and mutations
of valid encodings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def examples(default: int) -> int:
    """``default``, or ``BIZRA_FUZZ_EXAMPLES`` when that is larger."""
    return max(default, int(os.environ.get("BIZRA_FUZZ_EXAMPLES") or 0))


def fuzz(default: int) -> settings:
    """Hypothesis settings for a fuzz test of ``default`` examples (see :func:`examples`)."""
    return settings(max_examples=examples(default), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutations(draw: st.DrawFn, valid: list[bytes], most: int = 4) -> bytes:
    """One of ``valid`` with one to ``most`` bit flips, byte changes, cuts, extensions,
    deletions, insertions or repetitions."""
    data = bytearray(draw(st.sampled_from(valid)))
    for _ in range(draw(st.integers(1, most))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "extend", "delete", "insert", "repeat"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 40))]
    return bytes(data)
