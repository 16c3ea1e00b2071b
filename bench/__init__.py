"""make bench: the article's claims measured on this machine
(bench/README.md#benchmarks-make-bench)."""
