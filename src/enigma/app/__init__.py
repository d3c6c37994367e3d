"""Layer 9: the node daemon, the owner's and the analyst's tools, and the CLI."""
