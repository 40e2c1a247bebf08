"""The cycle model's cost table (placeholder: every instruction costs one cycle until the
calibrated table lands)."""


def cost(insn) -> int:
    """Modelled cycles of one decoded instruction."""
    return 1
