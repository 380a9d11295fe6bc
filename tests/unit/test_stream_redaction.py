"""A secret split across chunks of a stream is redacted as if the text came whole."""

from __future__ import annotations

import random
from typing import NamedTuple

import pytest

from looprunner.engine.redact import Redactor, StreamRedactor

SECRETS = {
    "A_TOKEN": "abcdef12",
    "B_API_KEY": "ef12xyzw",  # starts with the end of A_TOKEN
    "C_SECRET": "sk-" + "q" * 40,
    "D_TOKEN": "abcdef12345",  # A_TOKEN is a prefix of it
}


def streamed(redactor: Redactor, chunks: list[str]) -> str:
    stream = StreamRedactor(redactor)
    return "".join(stream.feed(chunk) for chunk in chunks) + stream.flush()


class Case(NamedTuple):
    test_id: str
    chunks: list[str]
    expected: str


CASES = [
    Case("split-in-two", ["key abcd", "ef12 end"], "key [redacted:A_TOKEN] end"),
    Case("one-char-chunks", list("x abcdef12 y"), "x [redacted:A_TOKEN] y"),
    Case("longer-wins", ["abcdef1", "2345!"], "[redacted:D_TOKEN]!"),
    Case("prefix-then-not", ["abcdef1", "2 and more"], "[redacted:A_TOKEN] and more"),
    Case("held-until-flush", ["ends with sk-qqq"], "ends with sk-qqq"),
    Case("nothing-secret", ["plain ", "text"], "plain text"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.test_id for c in CASES])
def test_a_stream_is_redacted_like_the_whole_text(case: Case) -> None:
    assert streamed(Redactor(SECRETS), case.chunks) == case.expected


def test_a_chunk_holds_back_only_what_could_start_a_secret() -> None:
    stream = StreamRedactor(Redactor(SECRETS))
    assert stream.feed("hello world\n") == "hello world\n"
    assert stream.feed("then abc") == "then "
    assert stream.feed("dxyz") == "abcdxyz"


def test_any_cut_of_any_text_gives_what_redacting_it_whole_gives() -> None:
    redactor = Redactor(SECRETS)
    rng = random.Random(20261129)
    alphabet = "abcdef12xyzwqsk- \n"
    for _ in range(2000):
        parts = [
            rng.choice(list(SECRETS.values()))
            if rng.random() < 0.3
            else "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 15)))
            for _ in range(rng.randint(1, 20))
        ]
        text = "".join(parts)
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 8))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert streamed(redactor, chunks) == redactor.text(text), chunks
