"""Small wording helpers shared by the stages that write sentences people read."""


def plural(n: int, word: str) -> str:
    """'1 contribution', '2 contributions'."""
    return f"{n} {word}{'' if n == 1 else 's'}"
