"""DeepSalt benchmarks: throughput against floors and the usual alternative, scaling, training, memory, cost.

``make bench`` runs :mod:`benchmarks.run`, which writes ``benchmarks/results.json`` and
``benchmarks/RESULTS.md``. Every figure is a median of several runs after a warm-up, and every
ratio compares runs taken side by side in the same process and the same minutes.
"""
