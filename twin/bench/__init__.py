"""Benchmarks as code, so the installed ``twin bench`` can run them; ``benchmarks/`` holds thin scripts."""
