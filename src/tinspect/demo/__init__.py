"""The bundled demo: two experiments trained on scikit-learn's digits (shipped, no download).

Importing this package is cheap; ``tinspect.demo.train`` imports Keras and scikit-learn.
"""
