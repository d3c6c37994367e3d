"""Layer 6: the analyst's language: schemas, scripts, the leak checker, the compiler, analytics."""
