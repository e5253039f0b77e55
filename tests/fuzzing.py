"""What the fuzz tests of outside formats share: damaged bytes, edited JSON, and the one-line
error that names the file."""

from __future__ import annotations

from hypothesis import strategies as st

# Any JSON value, small.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def one_line_naming(error: BaseException, path) -> str:
    """The message of `error`, asserted to be one line naming `path`."""
    message = str(error)
    assert str(path) in message and "\n" not in message, message
    return message


def mutated(draw, value, odd_values, depth: int = 0, deepest: int = 4):
    """`value` with one entry somewhere in it (down to `deepest` levels) dropped or replaced by
    one of `odd_values` or any JSON."""
    if isinstance(value, dict) and value and depth < deepest and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: mutated(draw, value[key], odd_values, depth + 1, deepest)}
    if isinstance(value, list) and value and depth < deepest and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        changed = mutated(draw, value[index], odd_values, depth + 1, deepest)
        return [*value[:index], changed, *value[index + 1 :]]
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {k: v for k, v in value.items() if k != key}
    return draw(st.sampled_from(odd_values) | JSON)


@st.composite
def broken(draw, content: bytes) -> bytes:
    """`content` truncated anywhere, or with a few bits flipped or bytes overwritten."""
    content = bytearray(content)
    how = draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        return bytes(content[: draw(st.integers(0, len(content) - 1))])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(content) - 1))
        if how == "flip":
            content[at] ^= 1 << draw(st.integers(0, 7))
        else:
            content[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
    return bytes(content)
