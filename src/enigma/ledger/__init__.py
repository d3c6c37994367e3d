"""Layer 7: the public ledger: Vyper contracts and a typed web3 client."""
