"""A stand-in for lit-nlp 1.3.1's API, for tests/test_lit_bridge.py when lit-nlp is absent.

Only the names and behaviour the bridge relies on: the field types the tests use (frozen,
keyword-only, as LIT's), the ``Model``/``BatchedModel`` bases and the ``Dataset`` base.
"""
