"""Bank statement parsers: pure functions from bytes to `StatementRecord`s, one module per format.

No Django import here: the parsers are tested on real files alone, and the import service
(`campaigns/services/statements.py`) stores and matches what they return.
"""
