"""make bench: the article's claims measured on this machine (CONTRACT §9)."""
