"""Development tools that measure the grammar library: corpora, real parsers, accept rates, random walks.

Not shipped (the wheel holds ``grammars/`` only); the commands are listed in ``grammar_lab/README.md``.
"""
