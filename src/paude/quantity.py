"""Kubernetes resource quantities as numbers, for podman's flags (pure).

The syntax is validated by ``paude.config.models`` (``500m``, ``4Gi``, ``1.5``);
these convert what passed it.
"""

from __future__ import annotations

from decimal import Decimal

_SUFFIXES = {
    "": Decimal(1), "m": Decimal("0.001"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
}


def _value(quantity: str) -> Decimal:
    number = quantity.rstrip("kKmMGTi")
    return Decimal(number) * _SUFFIXES[quantity[len(number):]]


def quantity_bytes(quantity: str) -> int:
    """Return a memory quantity (``4Gi``, ``500M``) in bytes, rounded up."""
    return int(-(-_value(quantity) // 1))


def quantity_cpus(quantity: str) -> str:
    """Return a CPU quantity (``500m``, ``2``) as podman's ``--cpus`` number (``0.5``, ``2``)."""
    value = _value(quantity).normalize()
    return f"{value:f}"


def cpu_shares(quantity: str) -> int:
    """Return a CPU request as cgroup shares, as the kubelet does (1 CPU = 1024, at least 2)."""
    return max(2, int(_value(quantity) * 1024))
