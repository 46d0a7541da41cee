"""Analysis of recorded experiments: interestingness, localization, silent-bug diagnostics.

numpy, scipy and networkx over the store; never Keras, never Textual.
"""
