"""Tokens as a person reads them: the one display function every dock uses.

Tokenizers name their pieces in their own codes: GPT-2-style byte-level BPE writes each byte as a
printable character (``Ġ`` a space, ``Ċ`` a newline, "é" as the two pieces ``Ã`` ``©``),
SentencePiece marks a word's start with ``▁`` (and may fall back to byte pieces ``<0xC3>``),
WordPiece marks a word's continuation with ``##``. :func:`token_spans` turns a model's raw tokens
into readable spans: byte pieces joined back into characters, markers turned into word
boundaries, and on request whole words (sub-word pieces merged). A span remembers which raw
tokens it covers, so scores can be summed over it (:func:`sum_over_spans`) and attention merged
(:func:`merge_attention`). Raw tokens are never changed where they are stored (batch outputs,
the cache); only what is drawn goes through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

_SPECIAL_TOKEN = re.compile(r"^(\[(CLS|SEP|PAD|MASK|BOS|EOS|UNK)\]|<(s|/s|pad|mask|bos|eos|cls|sep|unk)>|"
                            r"<\|[^|]*\|>)$", re.IGNORECASE)
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece's byte fallback
#: How white space inside a token is drawn when the token is nothing but white space.
_VISIBLE_SPACE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "↵"})


def is_special_token(token: str) -> bool:
    """Whether ``token`` is a tokenizer's marker ([CLS], </s>, <|endoftext|>…), not text."""
    return bool(_SPECIAL_TOKEN.match(token))


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable character for each byte, reversed (character -> byte)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {chr(character): byte for byte, character in zip(printable, characters)}


def _is_byte_level(tokens: Sequence[str]) -> bool:
    """Whether ``tokens`` read as GPT-2 byte-level pieces: every character is one of its byte
    characters, the bytes are valid UTF-8 together, and something shows it (a character that
    stands for a space, a control byte or part of a multi-byte character)."""
    decoder = _byte_decoder()
    data = bytearray()
    for token in tokens:
        if is_special_token(token):
            continue
        try:
            data.extend(decoder[character] for character in token)
        except KeyError:
            return False
    if not any(byte >= 0x80 or byte <= 0x20 or byte == 0x7F for byte in data):
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class TokenSpan:
    """Raw tokens ``first``..``end`` - 1 read as ``text`` (white space included, as the input had
    it). ``starts_word``: white space (or the start) comes before it; ``special``: a
    tokenizer's marker such as [CLS]."""

    text: str
    first: int
    end: int
    starts_word: bool = True
    special: bool = False

    @property
    def label(self) -> str:
        """What a chip or a table cell shows: the text without the white space that begins a
        word; white space alone made visible (␣, ↵); a newline inside text as ↵."""
        if self.special:
            return self.text
        if not self.text.strip():
            return self.text.translate(_VISIBLE_SPACE) or "∅"
        return self.text.strip(" ").replace("\r\n", "↵").replace("\n", "↵").replace("\t", "⇥")


def _pieces(tokens: Sequence[str]) -> list[TokenSpan]:
    """One span per readable unit: one token, or several byte pieces making one character."""
    byte_level = _is_byte_level(tokens)
    if byte_level:
        decoder = _byte_decoder()

        def to_bytes(token: str) -> bytes:
            return bytes(decoder[character] for character in token)
    else:
        def to_bytes(token: str) -> bytes:  # SentencePiece byte pieces, nothing else
            match = _BYTE_PIECE.match(token)
            if match is None:
                raise ValueError
            return bytes([int(match.group(1), 16)])
    sentencepiece = any("▁" in token for token in tokens)
    wordpiece = not sentencepiece and any(token.startswith("##") and len(token) > 2
                                          for token in tokens)
    spans: list[TokenSpan] = []
    pending = bytearray()
    pending_first = 0

    def flush(end: int) -> None:
        nonlocal pending
        if pending:
            spans.append(TokenSpan(pending.decode("utf-8", errors="replace"), pending_first, end))
            pending = bytearray()

    for index, token in enumerate(tokens):
        if is_special_token(token):
            flush(index)
            spans.append(TokenSpan(token, index, index + 1, special=True))
            continue
        try:
            data = to_bytes(token)
        except (ValueError, KeyError):
            flush(index)
            if wordpiece and token.startswith("##") and len(token) > 2:
                spans.append(TokenSpan(token[2:], index, index + 1, starts_word=False))
            else:
                spans.append(TokenSpan(token.replace("▁", " ") if sentencepiece else token,
                                       index, index + 1))
            continue
        if not pending:
            pending_first = index
        pending.extend(data)
        try:
            pending.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.reason == "unexpected end of data" and len(pending) - error.start < 4:
                continue  # a character's first bytes: wait for the rest
        flush(index + 1)
    flush(len(tokens))
    if byte_level or sentencepiece:
        # Byte-level and SentencePiece text carries its own spaces: a piece starts a word when
        # white space, a special token or nothing comes before it.
        spans = [_with_start(span, spans[i - 1] if i else None) for i, span in enumerate(spans)]
    return spans


def _with_start(span: TokenSpan, before: TokenSpan | None) -> TokenSpan:
    starts = (before is None or before.special or span.special or span.text[:1].isspace()
              or before.text[-1:].isspace())
    return span if starts == span.starts_word else TokenSpan(
        span.text, span.first, span.end, starts, span.special)


def token_spans(tokens: Sequence[str], words: bool = False) -> tuple[TokenSpan, ...]:
    """``tokens`` (a model's raw tokens) as readable spans, in order, covering every token.

    With ``words``, pieces that continue a word are merged into it ("mid" "w" "i" "ves" ->
    "midwives"); white space alone and special tokens stay spans of their own."""
    tokens = [str(token) for token in tokens]
    spans = _pieces(tokens)
    if not words:
        return tuple(spans)
    merged: list[TokenSpan] = []
    for span in spans:
        previous = merged[-1] if merged else None
        if (previous is not None and not span.special and not previous.special
                and not previous.text.strip(" ") and span.text.strip()):
            # A piece of spaces alone (a bare "Ġ") belongs to the word after it.
            merged[-1] = TokenSpan(previous.text + span.text, previous.first, span.end, True)
        elif (previous is not None and not span.starts_word and not span.special
                and not previous.special and previous.text.strip()):
            merged[-1] = TokenSpan(previous.text + span.text, previous.first, span.end,
                                   previous.starts_word)
        else:
            merged.append(span)
    return tuple(merged)


def token_labels(tokens: Sequence[str]) -> list[str]:
    """One readable label per raw token (for views with a row per token, such as the top-k
    table): each token of a multi-token character reads as that character."""
    labels = [""] * len(tokens)
    for span in token_spans(tokens):
        for index in range(span.first, span.end):
            labels[index] = span.label
    return labels


def readable_text(tokens: Sequence[str]) -> str:
    """``tokens`` as one line: words apart, the pieces of a word joined by "·" (a visible
    boundary), special tokens as they are."""
    out: list[str] = []
    for span in token_spans(tokens):
        if out:
            out.append(" " if span.starts_word or span.special else "·")
        out.append(span.label)
    return "".join(out)


def sum_over_spans(spans: Sequence[TokenSpan], scores: np.ndarray) -> np.ndarray:
    """Each span's total of the per-token ``scores``."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.asarray([scores[span.first:span.end].sum() for span in spans], dtype=np.float64)


def merge_attention(weights: np.ndarray, rows: Sequence[TokenSpan],
                    columns: Sequence[TokenSpan]) -> np.ndarray:
    """Attention (…, from-tokens, to-tokens) per span: attention *to* a span is the sum over its
    tokens, attention *from* a span the mean over its tokens (each row still sums to 1)."""
    weights = np.asarray(weights, dtype=np.float64)
    to_spans = np.stack([weights[..., span.first:span.end].sum(axis=-1) for span in columns],
                        axis=-1)
    return np.stack([to_spans[..., span.first:span.end, :].mean(axis=-2) for span in rows],
                    axis=-2)
